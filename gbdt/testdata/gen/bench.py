#!/usr/bin/env python3
"""Times XGBoost's and LightGBM's own prediction on the gbdt benchmark models (100 trees of
depth 6, written by gen.py), one row at a time and in batch, on one thread, for comparison with
streamd's Go benchmarks (go test ./gbdt -bench Predict). Figures go in docs/BENCHMARKS.md.

  /tmp/gbdt-venv/bin/python gbdt/testdata/gen/bench.py

Rows are random normal (scale 2) with no missing values, like the Go benchmark's. Both CPU time
(time.process_time, what the Go benchmark's cpu-ns/row measures) and wall time are printed: on a
shared machine the wall clock also counts time spent waiting for a core.
"""
import gzip
import os
import time

import lightgbm as lgb
import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(os.path.dirname(HERE), "models")


def timed(fn, rows):
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    c, w = time.process_time() - c0, time.perf_counter() - w0
    return rows / c, c / rows * 1e9, rows / w


def report(name, res):
    rps, ns, wall = res
    print(f"{name:40s} {rps:12,.0f} rows/cpu-s {ns:12,.0f} cpu-ns/row {wall:12,.0f} rows/s wall")


def main():
    rng = np.random.default_rng(1)
    single = rng.normal(0, 2, (2_000, 30))
    batch = rng.normal(0, 2, (200_000, 30))

    raw = gzip.open(os.path.join(MODELS, "bench_xgb.ubj.gz")).read()
    bx = xgb.Booster(params={"nthread": 1})
    bx.load_model(bytearray(raw))
    bx.set_param({"nthread": 1})
    print(f"xgboost {xgb.__version__}, {len(bx.get_dump())} trees")
    rows = [single[i:i + 1] for i in range(len(single))]
    bx.inplace_predict(rows[0])  # warm-up
    report("xgboost inplace_predict, one row", timed(lambda: [bx.inplace_predict(r) for r in rows], len(rows)))
    report("xgboost DMatrix + predict, one row",
           timed(lambda: [bx.predict(xgb.DMatrix(r, nthread=1)) for r in rows[:500]], 500))
    report("xgboost inplace_predict, batch", timed(lambda: bx.inplace_predict(batch), len(batch)))
    dm = xgb.DMatrix(batch[:5_000], nthread=1)
    report("xgboost pred_contribs, batch", timed(lambda: bx.predict(dm, pred_contribs=True), 5_000))

    txt = gzip.open(os.path.join(MODELS, "bench_lgb.txt.gz")).read().decode()
    bl = lgb.Booster(model_str=txt)
    print(f"lightgbm {lgb.__version__}, {bl.num_trees()} trees")
    bl.predict(rows[0], num_threads=1)
    report("lightgbm predict, one row", timed(lambda: [bl.predict(r, num_threads=1) for r in rows], len(rows)))
    report("lightgbm predict, batch", timed(lambda: bl.predict(batch, num_threads=1), len(batch)))
    report("lightgbm pred_contrib, batch",
           timed(lambda: bl.predict(batch[:5_000], pred_contrib=True, num_threads=1), 5_000))


if __name__ == "__main__":
    main()

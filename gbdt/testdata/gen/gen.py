#!/usr/bin/env python3
"""Generates the exactness fixtures of streamd's gbdt package.

It trains XGBoost and LightGBM models on data sets bundled with scikit-learn (nothing is
downloaded), one per objective and library, and writes, next to this script's parent folder
(gbdt/testdata):

  models/<name>.{json,ubj,txt}.gz   the models, as the libraries save them, gzip'd
  inputs/<dataset>.csv.gz           >= 10,000 evaluation rows per data set: resampled and jittered
                                    training rows, rows with NaN (missing) cells, rows with exact
                                    zeros, and rows whose values sit exactly on split thresholds
  expect/<name>.csv.gz              the library's own predictions (probabilities or values) for every row
  expect/<name>.shap.csv.gz         margins and pred_contribs (TreeSHAP) for the first SHAP_ROWS rows
  models/bench_{xgb,lgb}.*.gz       100 trees of depth 6 on make_classification data, for the benchmarks
                                    (BENCHMARKS.md; bench.py times the libraries on the same models)
  manifest.json                     library versions and what each model is

Run by hand (the Go tests only read the committed output; they never need Python):

  python3 -m venv /tmp/gbdt-venv
  /tmp/gbdt-venv/bin/pip install 'xgboost==3.2.0' 'lightgbm==4.7.0' 'scikit-learn==1.9.1' 'pandas==3.1.1' numpy
  /tmp/gbdt-venv/bin/python gbdt/testdata/gen/gen.py

The output is deterministic for given library versions (fixed seeds, one thread).
"""
import gzip
import io
import json
import os
import platform
import sys

import lightgbm as lgb
import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine, make_classification

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.dirname(HERE)
N_ROWS = 10_000
SHAP_ROWS = 1_000
SEED = 15


def write_gz(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # mtime=0 keeps the gzip bytes reproducible.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as f:
        f.write(text.encode() if isinstance(text, str) else text)


def fmt64(v):
    return "" if np.isnan(v) else repr(float(v))


def fmt32(v):
    # numpy's str of a float32 is the shortest decimal that reads back to the same float32.
    return "" if np.isnan(v) else str(np.float32(v))


def write_csv(path, header, rows, fmt):
    buf = io.StringIO()
    buf.write(",".join(header) + "\n")
    for r in rows:
        buf.write(",".join(fmt(v) for v in r) + "\n")
    write_gz(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------
# Data sets. Categorical columns are derived from numeric ones (binned, with shuffled labels so
# that the category order carries no signal a numeric split could use) and kept as category codes.


def datasets():
    rng = np.random.default_rng(SEED)
    out = {}

    bc = load_breast_cancer(as_frame=True)
    X = bc.data.copy()
    X.columns = [c.replace(" ", "_") for c in X.columns]
    out["breast_cancer"] = (X, bc.target.to_numpy().astype(float), [])

    db = load_diabetes(as_frame=True, scaled=False)
    X = db.data.copy()
    # bmi_band: 12 bands of bmi with shuffled codes; age_band: 6 bands of age.
    perm = rng.permutation(12)
    X["bmi_band"] = perm[np.clip(((X["bmi"] - 18) / 2).astype(int), 0, 11)]
    perm = rng.permutation(6)
    X["age_band"] = perm[np.clip(((X["age"] - 19) / 10).astype(int), 0, 5)]
    out["diabetes"] = (X, db.target.to_numpy().astype(float), ["bmi_band", "age_band"])

    wn = load_wine(as_frame=True)
    X = wn.data.copy()
    X.columns = [c.replace("/", "_") for c in X.columns]
    perm = rng.permutation(10)
    X["flavanoids_band"] = perm[np.clip(((X["flavanoids"] - 0.3) / 0.4).astype(int), 0, 9)]
    out["wine"] = (X, wn.target.to_numpy().astype(float), ["flavanoids_band"])
    return out


def with_missing(X, cats, rng, frac):
    """Training copy with a fraction of numeric cells set to NaN, so that defaults get learned."""
    X = X.copy().astype(float)
    num = [c for c in X.columns if c not in cats]
    mask = rng.random((len(X), len(num))) < frac
    vals = X[num].to_numpy(copy=True)
    vals[mask] = np.nan
    X[num] = vals
    return X


def eval_rows(X, cats, rng, thresholds):
    """N_ROWS evaluation rows: resampled training rows with jitter, then special cells."""
    base = X.to_numpy(dtype=float)
    idx = rng.integers(0, len(base), N_ROWS)
    rows = base[idx].copy()
    num = [i for i, c in enumerate(X.columns) if c not in cats]
    cat = [i for i, c in enumerate(X.columns) if c in cats]
    std = base[:, num].std(axis=0)
    jitter = rng.normal(0, 0.05, (N_ROWS, len(num))) * std
    # Keep 5 significant digits: compact CSV, and values like the data's own.
    rows[:, num] = np.array([float(f"{v:.5g}") for v in (rows[:, num] + jitter).ravel()]).reshape(N_ROWS, len(num))
    # Unseen or out-of-range categories now and then.
    for j in cat:
        r = rng.random(N_ROWS) < 0.02
        rows[r, j] = rng.choice([-1.0, 40.0, 2.5], r.sum())
    # ~15% rows with 1-3 missing cells, numeric or categorical.
    for i in np.nonzero(rng.random(N_ROWS) < 0.15)[0]:
        rows[i, rng.choice(rows.shape[1], rng.integers(1, 4), replace=False)] = np.nan
    # ~5% rows with an exact zero in a numeric cell (LightGBM's zero-as-missing rule).
    for i in np.nonzero(rng.random(N_ROWS) < 0.05)[0]:
        rows[i, num[rng.integers(len(num))]] = 0.0
    # ~10% rows with a cell exactly on a split threshold of one of the models, or just above it.
    for i in np.nonzero(rng.random(N_ROWS) < 0.10)[0]:
        f, t = thresholds[rng.integers(len(thresholds))]
        rows[i, f] = t if rng.random() < 0.7 else np.nextafter(t, np.inf)
    # A few whole rows of NaN.
    rows[rng.choice(N_ROWS, 20, replace=False)] = np.nan
    return rows


def xgb_thresholds(booster, names):
    df = booster.trees_to_dataframe()
    df = df[(df.Feature != "Leaf") & df.Split.notna()]
    pos = {n: i for i, n in enumerate(names)}
    return [(pos[f], float(s)) for f, s in zip(df.Feature, df.Split)]


def lgb_thresholds(booster):
    out = []
    for t in booster.dump_model()["tree_info"]:
        stack = [t["tree_structure"]]
        while stack:
            n = stack.pop()
            if "split_index" in n:
                # Infinite and huge thresholds exist, but XGBoost refuses inputs beyond float32.
                if n["decision_type"] == "<=" and abs(float(n["threshold"])) < 1e38:
                    out.append((n["split_feature"], float(n["threshold"])))
                stack += [n["left_child"], n["right_child"]]
    return out


def bench_models():
    """100 trees of depth 6 for the speed benchmarks: full-depth trees need more rows than the
    bundled data sets have, so these train on make_classification data (generated, not fetched)."""
    X, y = make_classification(n_samples=20_000, n_features=30, n_informative=20, random_state=SEED)
    b = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "nthread": 1, "seed": SEED,
                   "tree_method": "hist"}, xgb.DMatrix(X, y), 100)
    tmp = "/tmp/gbdt-gen-bench.ubj"
    b.save_model(tmp)
    write_gz(os.path.join(OUT, "models/bench_xgb.ubj.gz"), open(tmp, "rb").read())
    m = lgb.train({"objective": "binary", "max_depth": 6, "num_leaves": 64, "learning_rate": 0.1,
                   "num_threads": 1, "seed": SEED, "deterministic": True, "verbose": -1},
                  lgb.Dataset(X, y), 100)
    write_gz(os.path.join(OUT, "models/bench_lgb.txt.gz"), m.model_to_string())


# ---------------------------------------------------------------------------------------------


def main():
    data = datasets()
    manifest = {
        "generator": "gbdt/testdata/gen/gen.py",
        "versions": {
            "python": platform.python_version(),
            "xgboost": xgb.__version__,
            "lightgbm": lgb.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "rows": N_ROWS,
        "shap_rows": SHAP_ROWS,
        "inputs": {},
        "models": [],
    }

    trained = {}  # (library, dataset) -> (booster, early stopping rounds)
    boosters = {}  # model name -> (booster, early stopping rounds)
    thresholds = {}  # dataset -> [(feature, threshold)] of every model trained on it
    specs = [
        # name, library, dataset, objective, file format
        ("xgb_binary", "xgboost", "breast_cancer", "binary:logistic", "json"),
        # The same booster saved as UBJSON: it shares xgb_binary's expected outputs.
        ("xgb_binary_ubj", "xgboost", "breast_cancer", "binary:logistic", "ubj"),
        ("xgb_regression", "xgboost", "diabetes", "reg:squarederror", "json"),
        ("xgb_multiclass", "xgboost", "wine", "multi:softprob", "ubj"),
        ("lgb_binary", "lightgbm", "breast_cancer", "binary", "txt"),
        ("lgb_regression", "lightgbm", "diabetes", "regression", "txt"),
        ("lgb_multiclass", "lightgbm", "wine", "multiclass", "txt"),
    ]
    # Pass 1: train and save every model, and collect the split thresholds per data set, so that
    # the evaluation rows sit on the thresholds of both libraries' models.
    for name, lib, ds, obj, fmt in specs:
        X, y, cats = data[ds]
        Xtr = with_missing(X, cats, np.random.default_rng(SEED + 1), 0.05)
        if lib == "xgboost":
            key = (lib, ds)
            if key not in trained:
                Xc = Xtr.copy()
                for c in cats:
                    Xc[c] = pd.Categorical(Xc[c].astype(int), categories=list(range(int(X[c].max()) + 1)))
                params = {"objective": obj, "seed": SEED, "nthread": 1, "tree_method": "hist",
                          "max_cat_to_onehot": 1, "max_depth": 5, "eta": 0.15}
                if obj == "multi:softprob":
                    params["num_class"] = 3
                    params["max_depth"] = 4
                rounds, es = 60, None
                if obj == "binary:logistic":
                    # Early stopping on a held-out part, so that best_iteration is in the model.
                    rounds, es = 400, 10
                    params["eta"] = 0.3
                cut = int(len(Xc) * 0.8)
                perm = np.random.default_rng(SEED + 2).permutation(len(Xc))
                dtr = xgb.DMatrix(Xc.iloc[perm[:cut]], y[perm[:cut]], enable_categorical=True)
                dva = xgb.DMatrix(Xc.iloc[perm[cut:]], y[perm[cut:]], enable_categorical=True)
                if es is None:
                    dtr = xgb.DMatrix(Xc, y, enable_categorical=True)
                b = xgb.train(params, dtr, rounds, evals=[(dva, "valid")], early_stopping_rounds=es, verbose_eval=False)
                trained[key] = (b, es)
            b, es = trained[key]
            path = f"models/{name}.{fmt}.gz"
            tmp = f"/tmp/gbdt-gen-{name}.{fmt}"
            b.save_model(tmp)
            write_gz(os.path.join(OUT, path), open(tmp, "rb").read())
            thresholds.setdefault(ds, []).extend(xgb_thresholds(b, list(X.columns)))
            if cats:
                trees = json.loads(b.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
                assert any(t["categories_nodes"] for t in trees), f"{name}: no categorical split"
        else:
            params = {"objective": obj, "seed": SEED, "num_threads": 1, "deterministic": True,
                      "num_leaves": 24, "learning_rate": 0.1, "min_data_in_leaf": 5, "verbose": -1,
                      "min_data_per_group": 5, "cat_smooth": 1.0, "max_cat_to_onehot": 4, "cat_l2": 1.0}
            if obj == "multiclass":
                params["num_class"] = 3
                # Zeros are missing here: MissingType::Zero splits, with NaN read as zero.
                params["zero_as_missing"] = True
            ds_train = lgb.Dataset(Xtr, y, categorical_feature=cats or "auto", free_raw_data=False)
            b = lgb.train(params, ds_train, 80)
            path = f"models/{name}.txt.gz"
            write_gz(os.path.join(OUT, path), b.model_to_string())
            thresholds.setdefault(ds, []).extend(lgb_thresholds(b))
            es = None
            if cats:
                assert any(l.startswith("num_cat=") and l != "num_cat=0"
                           for l in b.model_to_string().splitlines()), f"{name}: no categorical split"
        boosters[name] = (b, es, path)

    # Pass 2: evaluation rows per data set, and each library's outputs on them.
    for name, lib, ds, obj, fmt in specs:
        X, y, cats = data[ds]
        b, es, path = boosters[name]
        if ds not in manifest["inputs"]:
            rows = eval_rows(X, cats, np.random.default_rng(SEED + 3), thresholds[ds])
            manifest["inputs"][ds] = {"file": f"inputs/{ds}.csv.gz", "features": list(X.columns), "categorical": cats}
            write_csv(os.path.join(OUT, f"inputs/{ds}.csv.gz"), list(X.columns), rows, fmt64)
            manifest["inputs"][ds]["_rows"] = rows
        rows = manifest["inputs"][ds]["_rows"]

        entry = {"name": name, "library": lib, "objective": obj, "file": path, "dataset": ds}
        if name == "xgb_binary_ubj":
            prev = next(m for m in manifest["models"] if m["name"] == "xgb_binary")
            entry.update({k: prev[k] for k in ("iteration_range", "best_iteration", "num_trees", "outputs", "expect", "shap")})
            manifest["models"].append(entry)
            continue
        if lib == "xgboost":
            # Categorical cells are category codes, as a numeric feature vector gives them.
            dm = xgb.DMatrix(np.asarray(rows, dtype=np.float64), feature_names=list(X.columns),
                             feature_types=["c" if c in cats else "float" for c in X.columns],
                             enable_categorical=True, missing=np.nan)
            it = (0, b.best_iteration + 1) if es is not None else (0, 0)
            entry["iteration_range"] = list(it)
            entry["best_iteration"] = int(b.best_iteration) if es is not None else None
            entry["num_trees"] = len(b.get_dump())
            pred = b.predict(dm, iteration_range=it)
            margin = b.predict(dm, iteration_range=it, output_margin=True)
            contrib = b.predict(dm, iteration_range=it, pred_contribs=True)
            # Batch and one-row predictions must agree with each other (the fixture is the batch).
            one = b.predict(xgb.DMatrix(rows[:1], feature_names=list(X.columns),
                                        feature_types=["c" if c in cats else "float" for c in X.columns],
                                        enable_categorical=True), iteration_range=it)
            assert np.array_equal(one, pred[:1])
            fmt = fmt32
        else:
            pred = b.predict(rows)
            margin = b.predict(rows, raw_score=True)
            contrib = b.predict(rows, pred_contrib=True)
            entry["num_trees"] = b.num_trees()
            fmt = fmt64
        pred = np.asarray(pred).reshape(N_ROWS, -1)
        margin = np.asarray(margin).reshape(N_ROWS, -1)
        k = pred.shape[1]
        contrib = np.asarray(contrib).reshape(N_ROWS, k, len(X.columns) + 1)
        entry["outputs"] = k
        write_csv(os.path.join(OUT, f"expect/{name}.csv.gz"), [f"p{i}" for i in range(k)], pred, fmt)
        hdr = [f"m{i}" for i in range(k)] + [f"c{i}_{j}" for i in range(k) for j in range(len(X.columns) + 1)]
        shap = np.hstack([margin[:SHAP_ROWS], contrib[:SHAP_ROWS].reshape(SHAP_ROWS, -1)])
        write_csv(os.path.join(OUT, f"expect/{name}.shap.csv.gz"), hdr, shap, fmt)
        entry["expect"] = f"expect/{name}.csv.gz"
        entry["shap"] = f"expect/{name}.shap.csv.gz"
        manifest["models"].append(entry)
        print(name, "trees", entry["num_trees"], file=sys.stderr)

    bench_models()
    for v in manifest["inputs"].values():
        del v["_rows"]
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

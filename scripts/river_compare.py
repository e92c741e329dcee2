#!/usr/bin/env python3
"""Progressive-validation figures of River learners on River's bundled data
sets, to compare with streamd's learners on the same streams
(online/river_test.go, online/river_regression_test.go).

Setup (once):
    python3 -m venv ~/.cache/streamd-river
    ~/.cache/streamd-river/bin/pip install river==0.26.1

Run from the repository root:
    ~/.cache/streamd-river/bin/python scripts/river_compare.py --export-dir online/testdata
    go test ./online -run 'TestRiver' -v

--export-dir writes each data set (features in River's column order, then the
label or target) as CSV; River is BSD-3-Clause and ships the files in its wheel
(see online/testdata/README.md). Every model sees the examples in the data
set's order and is scored test-then-train: River's
evaluate.progressive_val_score for accuracy, log loss, MAE and RMSE, and the
same loop by hand to collect the probabilities for an exact ROC AUC (River's
own ROCAUC metric interpolates over 10 thresholds by default, which would blur
the comparison).
"""

import argparse
import csv
import gzip
import io
import itertools
import math
import os
import random
import sys

from river import compose, datasets, evaluate, linear_model, metrics, optim, preprocessing, tree
from river.datasets import synth

FEATURES = [
    "empty_server_form_handler",
    "popup_window",
    "https",
    "request_from_other_domain",
    "anchor_from_other_domain",
    "is_popular",
    "long_url",
    "age_of_domain",
    "ip_in_url",
]


def models():
    # Same hyperparameters as the streamd runs in online/river_test.go.
    return {
        "ftrl (alpha .05, beta 1, l1 0, l2 1) + scaler": lambda: compose.Pipeline(
            preprocessing.StandardScaler(),
            linear_model.LogisticRegression(optimizer=optim.FTRLProximal(alpha=0.05, beta=1.0, l1=0.0, l2=1.0)),
        ),
        "ftrl (alpha .1, beta 1, l1 1, l2 1) + scaler": lambda: compose.Pipeline(
            preprocessing.StandardScaler(),
            linear_model.LogisticRegression(optimizer=optim.FTRLProximal(alpha=0.1, beta=1.0, l1=1.0, l2=1.0)),
        ),
        "hoeffding tree (defaults)": lambda: tree.HoeffdingTreeClassifier(),
    }


def exact_auc(scores, labels):
    pairs = sorted(zip(scores, labels))
    pos = sum(labels)
    neg = len(labels) - pos
    ordered, negs_below, i = 0.0, 0, 0
    while i < len(pairs):
        j, p, n = i, 0, 0
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            p += pairs[j][1]
            n += 1 - pairs[j][1]
            j += 1
        ordered += p * negs_below + p * n / 2
        negs_below += n
        i = j
    return ordered / (pos * neg)


def by_hand(model, stream=None):
    scores, labels, ll, correct = [], [], 0.0, 0
    for x, y in stream if stream is not None else datasets.Phishing():
        proba = model.predict_proba_one(x)
        if not proba:
            # progressive_val_score skips an example the model cannot score
            # yet (the tree's first one), so the figures skip it too.
            model.learn_one(x, y)
            continue
        p = proba.get(True, 0.0)
        yi = 1 if y else 0
        scores.append(p)
        labels.append(yi)
        q = min(max(p if yi else 1 - p, 1e-15), 1 - 1e-15)
        ll -= math.log(q)
        correct += bool(model.predict_one(x)) == bool(yi)
        model.learn_one(x, y)
    n = len(labels)
    return correct / n, ll / n, exact_auc(scores, labels), n


# The bundled regression data sets: name of the CSV, the data set, its target's name.
REGRESSION = {
    "trump_approval": (datasets.TrumpApproval, "five_thirty_eight"),
    "chick_weights": (datasets.ChickWeights, "weight"),
    "sp500_stocks": (datasets.SP500Stocks, "next_day_return"),
}


def regression_models():
    # River's defaults; streamd's counterparts in online/river_regression_test.go.
    return {
        "StandardScaler | LinearRegression": lambda: preprocessing.StandardScaler() | linear_model.LinearRegression(),
        "TargetStandardScaler(StandardScaler | LinearRegression)": lambda: preprocessing.TargetStandardScaler(
            preprocessing.StandardScaler() | linear_model.LinearRegression()
        ),
        # online/river_treereg_test.go. Scaled: on raw features the leaves' SGD diverges on
        # TrumpApproval (MAE 4.7e8).
        "StandardScaler | HoeffdingTreeRegressor": lambda: preprocessing.StandardScaler() | tree.HoeffdingTreeRegressor(),
    }


# River's synthetic generators, 10,000 examples each, without drift and with one abrupt drift
# after 5,000 (the first concept's generator, then another concept's under another seed).
N_SYNTH, DRIFT_AT = 10000, 5000


def _abrupt(a, b):
    return lambda: itertools.chain(itertools.islice(a(), DRIFT_AT), b())


SYNTHETIC = {
    "sea": lambda: synth.SEA(variant=0, seed=42),
    "sea_drift": _abrupt(lambda: synth.SEA(variant=0, seed=42), lambda: synth.SEA(variant=3, seed=43)),
    "agrawal": lambda: synth.Agrawal(classification_function=0, seed=42),
    "agrawal_drift": _abrupt(
        lambda: synth.Agrawal(classification_function=0, seed=42),
        lambda: synth.Agrawal(classification_function=4, seed=43),
    ),
    "stagger": lambda: synth.STAGGER(classification_function=0, seed=42),
    "stagger_drift": _abrupt(
        lambda: synth.STAGGER(classification_function=0, seed=42),
        lambda: synth.STAGGER(classification_function=2, seed=43),
    ),
}


def synthetic(name):
    return itertools.islice(SYNTHETIC[name](), N_SYNTH)


def synthetic_table():
    print("| stream | model | accuracy | accuracy before the drift | ROC AUC (exact) | nodes | examples scored |")
    print("|---|---|---|---|---|---|---|")
    for name in SYNTHETIC:
        model = tree.HoeffdingTreeClassifier()
        hacc, _, hauc, n = by_hand(model, synthetic(name))
        # Accuracy over the first DRIFT_AT examples (the first is not scored), by a second run.
        before, m2 = metrics.Accuracy(), tree.HoeffdingTreeClassifier()
        for x, y in itertools.islice(synthetic(name), DRIFT_AT):
            p = m2.predict_one(x)
            if p is not None:
                before.update(y, p)
            m2.learn_one(x, y)
        print(f"| {name} | River HoeffdingTreeClassifier() | {hacc:.4f} | {before.get():.4f} | {hauc:.4f} | {model.n_nodes} | {n} |")


def anomaly_stream():
    """5,000 points in [0, 1]^3: normal ones around a centre that moves once, after 2,500 (a drift),
    and 2% anomalies uniform over the cube. Returns (x, is_anomaly) pairs."""
    rng = random.Random(7)
    out = []
    for i in range(5000):
        centre = 0.35 if i < 2500 else 0.65
        if rng.random() < 0.02:
            x, y = [rng.random() for _ in range(3)], 1
        else:
            x, y = [min(max(rng.gauss(centre, 0.05), 0.0), 1.0) for _ in range(3)], 0
        out.append(({j: v for j, v in enumerate(x)}, y))
    return out


def anomaly_table():
    from river import anomaly

    print("| stream | model | ROC AUC (exact) | examples |")
    print("|---|---|---|---|")
    stream = anomaly_stream()
    for seed in (1, 2, 3):
        model = anomaly.HalfSpaceTrees(seed=seed)
        scores, labels = [], []
        for x, y in stream:
            scores.append(model.score_one(x))
            labels.append(y)
            model.learn_one(x)
        print(f"| hst_anomalies | River HalfSpaceTrees(seed={seed}) | {exact_auc(scores, labels):.4f} | {len(labels)} |")


ARF_SEEDS = (1, 2, 3)


def arf_table():
    """ARFClassifier() on the synthetic streams and StandardScaler | ARFRegressor() on the
    regression sets, at River's defaults, for seeds 1-3 (online/river_arf_test.go): both forests
    draw at random with different generators, so the means over the seeds are what compare."""
    from river import forest

    print("| stream | model | seed | accuracy | accuracy before the drift | ROC AUC (exact) | examples scored |")
    print("|---|---|---|---|---|---|---|")
    for name in SYNTHETIC:
        for seed in ARF_SEEDS:
            model = forest.ARFClassifier(seed=seed)
            acc, before, scores, labels = metrics.Accuracy(), metrics.Accuracy(), [], []
            for i, (x, y) in enumerate(synthetic(name)):
                proba = model.predict_proba_one(x)
                if proba:  # progressive_val_score skips what the model cannot score yet
                    p = model.predict_one(x)
                    acc.update(y, p)
                    if i < DRIFT_AT:
                        before.update(y, p)
                    scores.append(proba.get(True, 0.0))
                    labels.append(1 if y else 0)
                model.learn_one(x, y)
            auc = exact_auc(scores, labels)
            print(f"| {name} | River ARFClassifier(seed={seed}) | {seed} | {acc.get():.4f} | {before.get():.4f} | {auc:.4f} | {len(labels)} |", flush=True)
    print()
    print("| data set | model | seed | MAE | RMSE | examples |")
    print("|---|---|---|---|---|---|")
    for name, (ds, _) in REGRESSION.items():
        for seed in ARF_SEEDS:
            mae, rmse = metrics.MAE(), metrics.RMSE()
            model = preprocessing.StandardScaler() | forest.ARFRegressor(seed=seed)
            for x, y in ds():
                p = model.predict_one(x)
                mae.update(y, p)
                rmse.update(y, p)
                model.learn_one(x, y)
            print(f"| {name} | River StandardScaler \\| ARFRegressor(seed={seed}) | {seed} | {mae.get():.4f} | {rmse.get():.4f} | {ds().n_samples} |", flush=True)


def speed_table():
    """Examples per second of predict then learn, one example at a time, on the same rows as
    BenchmarkRiverRows (online/river_speed_test.go); the best of three passes."""
    import time

    from river import anomaly, forest

    cases = [
        ("trump_approval", "StandardScaler | LinearRegression", lambda: preprocessing.StandardScaler() | linear_model.LinearRegression(),
         list(datasets.TrumpApproval()), "regress"),
        ("trump_approval", "StandardScaler | HoeffdingTreeRegressor", lambda: preprocessing.StandardScaler() | tree.HoeffdingTreeRegressor(),
         list(datasets.TrumpApproval()), "regress"),
        ("agrawal", "HoeffdingTreeClassifier", tree.HoeffdingTreeClassifier, list(synthetic("agrawal")), "classify"),
        ("trump_approval", "StandardScaler | ARFRegressor", lambda: preprocessing.StandardScaler() | forest.ARFRegressor(seed=1),
         list(datasets.TrumpApproval()), "regress"),
        ("agrawal (first 2,000)", "ARFClassifier", lambda: forest.ARFClassifier(seed=1), list(synthetic("agrawal"))[:2000], "classify"),
        ("hst_anomalies", "HalfSpaceTrees", lambda: anomaly.HalfSpaceTrees(seed=1), anomaly_stream(), "score"),
    ]
    print("| rows | River model | examples/s |")
    print("|---|---|---|")
    for name, model_name, make, rows, kind in cases:
        best = 0.0
        for _ in range(3):
            model = make()
            start = time.perf_counter()
            for x, y in rows:
                if kind == "score":
                    model.score_one(x)
                    model.learn_one(x)
                else:
                    model.predict_one(x)
                    model.learn_one(x, y)
            best = max(best, len(rows) / (time.perf_counter() - start))
        print(f"| {name} | River {model_name.replace('|', chr(92) + '|')} | {best:.0f} |")


def write_csv(path, header, rows):
    # The synthetic streams are large enough to be worth compressing (they are exact reprs).
    # mtime 0 keeps the compressed bytes the same from one export to the next.
    if path.endswith(".gz"):
        opener = lambda: io.TextIOWrapper(gzip.GzipFile(path, "wb", mtime=0), newline="")
    else:
        opener = lambda: open(path, "w", newline="")
    with opener() as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    print(f"wrote {path}", file=sys.stderr)


def export(directory):
    rows = []
    for x, y in datasets.Phishing():
        assert list(x) == FEATURES, list(x)
        rows.append([repr(float(x[k])) for k in FEATURES] + [1 if y else 0])
    write_csv(os.path.join(directory, "phishing.csv"), FEATURES + ["is_phishing"], rows)
    for name, (ds, target) in REGRESSION.items():
        header, rows = None, []
        for x, y in ds():
            if header is None:
                header = list(x)
            assert list(x) == header, list(x)
            rows.append([repr(float(x[k])) for k in header] + [repr(float(y))])
        write_csv(os.path.join(directory, name + ".csv"), header + [target], rows)
    for name in SYNTHETIC:
        header, rows = None, []
        for x, y in synthetic(name):
            if header is None:
                header = list(x)
            assert list(x) == header, list(x)
            rows.append([repr(float(x[k])) for k in header] + [1 if y else 0])
        write_csv(os.path.join(directory, name + ".csv.gz"), [str(k) for k in header] + ["label"], rows)
    rows = [[repr(float(x[j])) for j in range(3)] + [y] for x, y in anomaly_stream()]
    write_csv(os.path.join(directory, "hst_anomalies.csv.gz"), ["0", "1", "2", "is_anomaly"], rows)


def regression_table():
    print("| data set | model | MAE | RMSE | examples |")
    print("|---|---|---|---|---|")
    for name, (ds, _) in REGRESSION.items():
        for model_name, make in regression_models().items():
            mae, rmse = metrics.MAE(), metrics.RMSE()
            evaluate.progressive_val_score(ds(), make(), mae)
            evaluate.progressive_val_score(ds(), make(), rmse)
            cell = model_name.replace("|", "\\|")  # a pipe inside a Markdown cell
            print(f"| {name} | River {cell} | {mae.get():.4f} | {rmse.get():.4f} | {ds().n_samples} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export-dir", help="write the data sets as CSV files into this directory")
    ap.add_argument("--speed", action="store_true", help="only time River's learners on the rows")
    ap.add_argument("--arf", action="store_true", help="only the adaptive random forests (slow)")
    args = ap.parse_args()
    if args.speed:
        speed_table()
        return
    if args.arf:
        arf_table()
        return
    if args.export_dir:
        export(args.export_dir)

    import river

    print(f"River {river.__version__}, Phishing ({datasets.Phishing().n_samples} examples), progressive validation\n")
    print("| model | accuracy | log loss | ROC AUC (exact) | examples scored |")
    print("|---|---|---|---|---|")
    for name, make in models().items():
        acc, ll = metrics.Accuracy(), metrics.LogLoss()
        evaluate.progressive_val_score(datasets.Phishing(), make(), acc)
        evaluate.progressive_val_score(datasets.Phishing(), make(), ll)
        hacc, hll, hauc, n = by_hand(make())
        # The hand loop must agree with River's own evaluation.
        assert abs(hacc - acc.get()) < 1e-12 and abs(hll - ll.get()) < 1e-5, (hacc, acc.get(), hll, ll.get())
        print(f"| River {name} | {acc.get():.4f} | {ll.get():.4f} | {hauc:.4f} | {n} |")
    print(f"\nRiver {river.__version__}, regression, progressive validation\n")
    regression_table()
    print(f"\nRiver {river.__version__}, synthetic streams ({N_SYNTH} examples, drift after {DRIFT_AT}), progressive validation\n")
    synthetic_table()
    print(f"\nRiver {river.__version__}, Half-Space Trees (defaults) on a generated anomaly stream, score then learn\n")
    anomaly_table()
    print(f"\nRiver {river.__version__}, adaptive random forests (defaults), progressive validation\n")
    arf_table()


if __name__ == "__main__":
    main()

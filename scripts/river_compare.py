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
import math
import os
import sys

from river import compose, datasets, evaluate, linear_model, metrics, optim, preprocessing, tree

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


def by_hand(model):
    scores, labels, ll, correct = [], [], 0.0, 0
    for x, y in datasets.Phishing():
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
        correct += (model.predict_one(x) is True) == bool(yi)
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
    }


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
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


def regression_table():
    print("| data set | model | MAE | RMSE | examples |")
    print("|---|---|---|---|---|")
    for name, (ds, _) in REGRESSION.items():
        for model_name, make in regression_models().items():
            mae, rmse = metrics.MAE(), metrics.RMSE()
            evaluate.progressive_val_score(ds(), make(), mae)
            evaluate.progressive_val_score(ds(), make(), rmse)
            cell = model_name.replace("|", "\\|")  # a pipe inside a Markdown cell
            print(f"| {name} | River {cell} | {mae.get():.4f} | {rmse.get():.4f} | {ds().n_samples} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export-dir", help="write the data sets as CSV files into this directory")
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Progressive-validation figures of River learners on River's Phishing data set,
to compare with streamd's learners on the same stream (online/river_test.go).

Setup (once):
    python3 -m venv ~/.cache/streamd-river
    ~/.cache/streamd-river/bin/pip install river==0.26.1

Run from the repository root:
    ~/.cache/streamd-river/bin/python scripts/river_compare.py --export online/testdata/phishing.csv
    go test ./online -run TestRiverPhishing -v

--export writes the data set (features in River's column order, then the label)
as CSV; River is BSD-3-Clause and ships the file in its wheel (see
online/testdata/README.md). Every model sees the examples in the data set's
order and is scored test-then-train: River's evaluate.progressive_val_score for
accuracy and log loss, and the same loop by hand to collect the probabilities
for an exact ROC AUC (River's own ROCAUC metric interpolates over 10
thresholds by default, which would blur the comparison).
"""

import argparse
import csv
import math
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", help="write the data set as CSV to this path")
    args = ap.parse_args()
    if args.export:
        with open(args.export, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(FEATURES + ["is_phishing"])
            for x, y in datasets.Phishing():
                assert list(x) == FEATURES, list(x)
                w.writerow([repr(float(x[k])) for k in FEATURES] + [1 if y else 0])
        print(f"wrote {args.export}", file=sys.stderr)

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


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The learning half of `make bench-peers`: River and Vowpal Wabbit on the rows that streamd's
learners are compared on (scripts/river_compare.py, online/river_test.go, online/river_speed_test.go),
quality by progressive validation (predict, then learn, one example at a time) and examples/s.

Setup (scripts/bench-peers.sh does it):
    python3 -m venv ~/.cache/streamd-river
    ~/.cache/streamd-river/bin/pip install river==0.26.1 vowpalwabbit

Run from the repository root:
    ~/.cache/streamd-river/bin/python scripts/learn_peers.py

Vowpal Wabbit runs with its defaults (adaptive, normalized, invariant SGD, learning rate 0.5) and
--loss_function logistic or squared; it reads each example as a text line, which is how its Python
API takes examples, so its examples/s include formatting that line. It has no Hoeffding tree: on the
tree's rows (agrawal) it is a linear model, so only its speed is comparable there.
"""

import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import river_compare as rc  # noqa: E402
from river import datasets, metrics  # noqa: E402


def vw_workspace(args):
    from vowpalwabbit import pyvw

    return pyvw.Workspace(args + " --quiet")


def vw_line(x, label=None):
    feats = " ".join(f"f{i}:{float(v)!r}" for i, v in enumerate(x.values()) if v)
    return (f"{label} " if label is not None else "") + "| " + feats


def vw_phishing():
    """VW logistic regression on Phishing: accuracy, log loss, exact ROC AUC, examples."""
    vw = vw_workspace("--loss_function logistic --link logistic")
    scores, labels, ll, correct = [], [], 0.0, 0
    for x, y in datasets.Phishing():
        yi = 1 if y else 0
        p = vw.predict(vw_line(x))
        scores.append(p)
        labels.append(yi)
        q = min(max(p if yi else 1 - p, 1e-15), 1 - 1e-15)
        ll -= math.log(q)
        correct += (p > 0.5) == bool(yi)
        vw.learn(vw_line(x, 1 if yi else -1))
    n = len(labels)
    vw.finish()
    return correct / n, ll / n, rc.exact_auc(scores, labels), n


def vw_regression(rows):
    """VW squared loss: MAE, RMSE over the rows, progressively."""
    vw = vw_workspace("--loss_function squared")
    mae, rmse = metrics.MAE(), metrics.RMSE()
    for x, y in rows:
        p = vw.predict(vw_line(x))
        mae.update(y, p)
        rmse.update(y, p)
        vw.learn(vw_line(x, y))
    vw.finish()
    return mae.get(), rmse.get()


def vw_speed(rows, args, label):
    best = 0.0
    for _ in range(3):
        vw = vw_workspace(args)
        start = time.perf_counter()
        for x, y in rows:
            vw.predict(vw_line(x))
            vw.learn(vw_line(x, label(y)))
        best = max(best, len(rows) / (time.perf_counter() - start))
        vw.finish()
    return best


def main():
    import river

    try:
        import vowpalwabbit

        vw_version = vowpalwabbit.__version__
    except ImportError:
        vw_version = None
    print(f"River {river.__version__}; Vowpal Wabbit {vw_version or 'not installed'}\n")

    print("Phishing (River's bundled set), progressive validation\n")
    print("| system | model | accuracy | log loss | ROC AUC (exact) | examples scored |")
    print("|---|---|---|---|---|---|")
    for name, make in rc.models().items():
        acc, ll, auc, n = rc.by_hand(make())
        print(f"| River | {name} | {acc:.4f} | {ll:.4f} | {auc:.4f} | {n} |")
    if vw_version:
        acc, ll, auc, n = vw_phishing()
        print(f"| Vowpal Wabbit | --loss_function logistic (defaults) | {acc:.4f} | {ll:.4f} | {auc:.4f} | {n} |")

    print("\nTrumpApproval (River's bundled set), progressive validation\n")
    print("| system | model | MAE | RMSE | examples |")
    print("|---|---|---|---|---|")
    rows = list(datasets.TrumpApproval())
    for name, make in rc.regression_models().items():
        mae, rmse = metrics.MAE(), metrics.RMSE()
        m = make()
        for x, y in rows:
            p = m.predict_one(x)
            mae.update(y, p)
            rmse.update(y, p)
            m.learn_one(x, y)
        print(f"| River | {name.replace('|', chr(92) + '|')} | {mae.get():.4f} | {rmse.get():.4f} | {len(rows)} |")
    if vw_version:
        mae, rmse = vw_regression(rows)
        print(f"| Vowpal Wabbit | --loss_function squared (defaults) | {mae:.4f} | {rmse:.4f} | {len(rows)} |")

    print("\nExamples/s, predict then learn one at a time, best of three passes (River: scripts/river_compare.py --speed)\n")
    rc.speed_table()
    if vw_version:
        print(f"| trump_approval | Vowpal Wabbit --loss_function squared | {vw_speed(rows, '--loss_function squared', float):.0f} |")
        agrawal = list(rc.synthetic("agrawal"))
        sp = vw_speed(agrawal, "--loss_function logistic", lambda y: 1 if y else -1)
        print(f"| agrawal | Vowpal Wabbit --loss_function logistic (linear: VW has no Hoeffding tree) | {sp:.0f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Trains the offline fraud model of the walkthrough (docs/offline-models.md) on what streamd saw.

Training rows are streamd's own predictions: each records the features as of its event, computed
by the pipeline (the same code that will feed the model when it serves), under the names the model
file will carry. Labels come from the labels topic, joined by event id. So the model is trained on
exactly the inputs it will be scored on.

  python train.py --brokers 127.0.0.1:9092 --out nightly.json               # XGBoost (JSON)
  python train.py --brokers 127.0.0.1:9092 --library lightgbm --out nightly.txt

Needs: pip install 'xgboost==3.2.0' 'lightgbm==4.7.0' scikit-learn pandas confluent-kafka
"""
import argparse
import json
import sys

import numpy as np
import pandas as pd
from confluent_kafka import Consumer, TopicPartition
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

# The pipeline's numeric and one-hot features (configs/fraud-pipeline.yaml): an offline model reads
# numbers as the event carries them (before log1p or standardize) and a one-hot feature as the
# index of its value in source.fields.<field>.values. Hashed features (country, mcc) are not model
# inputs.
NUMERIC = ["amount_log", "tx_count_10m", "amount_sum_10m", "tx_count_1h", "merchants_1h"]
CHANNELS = ["pos", "online", "atm"]


def read_topic(brokers, topic):
    """Every committed record of topic, as of now."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": "streamd-walkthrough-train",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    md = c.list_topics(topic, timeout=10)
    if topic not in md.topics or md.topics[topic].error is not None:
        sys.exit(f"topic {topic} does not exist")
    ends = {}
    parts = []
    for p in md.topics[topic].partitions:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if hi > lo:
            ends[p] = hi
            parts.append(TopicPartition(topic, p, lo))
    c.assign(parts)
    out = []
    while ends:
        for m in c.consume(10_000, timeout=5):
            if m.error():
                continue
            out.append(m.value())
            if m.offset() >= ends.get(m.partition(), 0) - 1:
                ends.pop(m.partition(), None)
        # A transaction marker can be the last offset: stop at the stable end.
        for p in list(ends):
            pos = c.position([TopicPartition(topic, p)])[0].offset
            if pos >= ends[p]:
                ends.pop(p)
    c.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--predictions", default="fraud-scores")
    ap.add_argument("--labels", default="labels")
    ap.add_argument("--library", choices=["xgboost", "lightgbm"], default="xgboost")
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    rows = {}
    for v in read_topic(a.brokers, a.predictions):
        p = json.loads(v)
        f = p["features"]
        row = {n: (np.nan if f.get(n) is None else float(f[n])) for n in NUMERIC}
        row["channel"] = float(CHANNELS.index(f["channel"])) if f.get("channel") in CHANNELS else np.nan
        rows[p["event_id"]] = row
    labels = {}
    for v in read_topic(a.brokers, a.labels):
        l = json.loads(v)
        labels[l["event_id"]] = int(l["label"])
    ids = [i for i in rows if i in labels]
    if len(ids) < 1000:
        sys.exit(f"only {len(ids)} predictions have a label yet: let the pipeline run longer")
    X = pd.DataFrame([rows[i] for i in ids], columns=NUMERIC + ["channel"])
    y = np.array([labels[i] for i in ids])
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=1, stratify=y)
    if a.library == "xgboost":
        import xgboost as xgb
        m = xgb.XGBClassifier(n_estimators=a.trees, max_depth=4, learning_rate=0.1, random_state=1, n_jobs=1)
        m.fit(Xtr, ytr)
        auc = roc_auc_score(yte, m.predict_proba(Xte)[:, 1])
        m.save_model(a.out)
    else:
        import lightgbm as lgb
        m = lgb.LGBMClassifier(n_estimators=a.trees, num_leaves=15, random_state=1, n_jobs=1, verbose=-1)
        m.fit(Xtr, ytr)
        auc = roc_auc_score(yte, m.predict_proba(Xte)[:, 1])
        m.booster_.save_model(a.out)
    print(f"trained {a.library} on {len(ytr)} labelled events ({ytr.mean():.1%} fraud); "
          f"held-out AUC {auc:.3f}; saved {a.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Prints the latest committed predictions of a topic, one JSON record a line (the walkthrough's
way to look at them: docs/offline-models.md).

  python peek.py --brokers 127.0.0.1:9092 --topic fraud-scores-offline -n 3
"""
import argparse

from confluent_kafka import Consumer, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--topic", default="fraud-scores-offline")
    ap.add_argument("-n", type=int, default=3, help="records per partition")
    a = ap.parse_args()
    c = Consumer({"bootstrap.servers": a.brokers, "group.id": "streamd-walkthrough-peek",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    parts = []
    for p in c.list_topics(a.topic, timeout=10).topics[a.topic].partitions:
        lo, hi = c.get_watermark_offsets(TopicPartition(a.topic, p), timeout=10)
        if hi > lo:
            parts.append(TopicPartition(a.topic, p, max(lo, hi - a.n - 1)))
    c.assign(parts)
    left = len(parts) * a.n
    for m in c.consume(left * 2, timeout=5):
        if not m.error() and left > 0:
            print(m.value().decode())
            left -= 1
    c.close()


if __name__ == "__main__":
    main()

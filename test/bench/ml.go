package main

// mlPipeline is the full ML pipeline of the performance issue's measurements: the DESIGN's 60 s
// tumbling count + sum per card, four features as of each event from two sliding windows, and one
// FTRL model scoring every event (predictions out). Lighter than configs/fraud-pipeline.yaml (no
// session window, no categorical features, no second model), and the workload the ratio target of
// docs/BENCHMARKS.md refers to.
var mlPipeline = []byte(`
app: bench-ml
kafka:
  brokers: ["${KAFKA_BROKERS:-127.0.0.1:9092}"]
  commit_interval: 100ms
state:
  dir: streamd-state
source:
  topic: transactions
  format: json
  key: card_id
  event_id: event_id
  event_time: {field: event_time, format: rfc3339, max_future: 1h, not_before: 2000-01-01}
  max_out_of_orderness: 5s
  max_record_bytes: 64KiB
  fields:
    amount: {type: number, required: true, min: 0}
    merchant: {type: string, max_length: 64}
    country: {type: string, max_length: 2}
windows:
  - name: card_activity_1m
    kind: tumbling
    size: 1m
    aggs: [count, {sum: amount}]
    output: card-activity-1m
features:
  - {name: tx_count_10m, window: {kind: sliding, size: 10m}, agg: count, transform: [log1p, standardize]}
  - {name: amount_sum_10m, window: {kind: sliding, size: 10m}, agg: {sum: amount}, transform: [log1p, standardize]}
  - {name: tx_count_1h, window: {kind: sliding, size: 1h}, agg: count, transform: [log1p, standardize]}
  - {name: amount_sum_1h, window: {kind: sliding, size: 1h}, agg: {sum: amount}, transform: [log1p, standardize]}
labels:
  topic: labels
  event_id: event_id
  field: label
  ttl: 1h
models:
  champion: fraud_ftrl
  list:
    - {name: fraud_ftrl, learner: {kind: ftrl_logistic, alpha: 0.1, beta: 1.0, l1: 1.0, l2: 1.0}}
outputs:
  predictions: fraud-scores
  dead_letters: transactions-dlq
  late: transactions-late
`)

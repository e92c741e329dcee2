package main

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/kafkaread"
	"github.com/streamd/streamd/stream"
)

// position is a source record's place: partition and offset.
type position struct {
	partition int32
	offset    int64
}

// readBack is what the demo finds when it reads its topics back as a read_committed consumer.
type readBack struct {
	source                   int // records in the source topic
	clean, dead, predictions int // outputs whose lineage points into the source topic
	missing, duplicated      int // source records with no clean record or dead letter, or more than one
	predDuplicated           int // source records with more than one prediction
	cleanWithoutPrediction   int // clean records without a prediction (when the pipeline predicts)
}

func (r readBack) exactlyOnce(predicts bool) bool {
	return r.missing == 0 && r.duplicated == 0 && r.predDuplicated == 0 && (!predicts || r.cleanWithoutPrediction == 0)
}

// readAll returns every committed record of topic up to its end offsets as of the call.
func readAll(ctx context.Context, brokers []string, topic string) ([]*kgo.Record, error) {
	return kafkaread.Committed(ctx, []kgo.Opt{kgo.SeedBrokers(brokers...)}, topic)
}

// sourcePosition returns the source position in r's lineage headers, if they point into source.
func sourcePosition(r *kgo.Record, source string) (position, bool) {
	var topic, part, off string
	for _, h := range r.Headers {
		switch h.Key {
		case stream.HeaderSourceTopic:
			topic = string(h.Value)
		case stream.HeaderSourcePartition:
			part = string(h.Value)
		case stream.HeaderSourceOffset:
			off = string(h.Value)
		}
	}
	if topic != source {
		return position{}, false
	}
	p, err1 := strconv.ParseInt(part, 10, 32)
	o, err2 := strconv.ParseInt(off, 10, 64)
	return position{int32(p), o}, err1 == nil && err2 == nil
}

// checkReadBack reads the source, clean, dead-letter and predictions topics back and matches the
// outputs to the source records by their lineage headers: each source record must have exactly one
// clean record or one dead letter, and each clean record exactly one prediction.
func checkReadBack(ctx context.Context, brokers []string, source, clean, dead, predictions string) (readBack, error) {
	var rb readBack
	src, err := readAll(ctx, brokers, source)
	if err != nil {
		return rb, err
	}
	rb.source = len(src)
	outcome := map[position]int{}
	for _, r := range src {
		outcome[position{r.Partition, r.Offset}] = 0
	}
	count := func(topic string, into map[position]int, n *int) error {
		recs, err := readAll(ctx, brokers, topic)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if p, ok := sourcePosition(r, source); ok {
				into[p]++
				*n++
			}
		}
		return nil
	}
	if err := count(clean, outcome, &rb.clean); err != nil {
		return rb, err
	}
	cleanPos := map[position]bool{}
	for p, n := range outcome {
		if n > 0 {
			cleanPos[p] = true
		}
	}
	if err := count(dead, outcome, &rb.dead); err != nil {
		return rb, err
	}
	for _, n := range outcome {
		switch {
		case n == 0:
			rb.missing++
		case n > 1:
			rb.duplicated++
		}
	}
	if predictions != "" {
		preds := map[position]int{}
		if err := count(predictions, preds, &rb.predictions); err != nil {
			return rb, err
		}
		for _, n := range preds {
			if n > 1 {
				rb.predDuplicated++
			}
		}
		for p := range cleanPos {
			if preds[p] == 0 {
				rb.cleanWithoutPrediction++
			}
		}
	}
	return rb, nil
}

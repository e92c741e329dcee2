package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/gen"
)

// badHeader marks, on an input record, the defect the generator gave it: the ground truth the
// verifier checks the dead-letter topic against.
const badHeader = "chaos-bad"

// producer produces generated card transactions at a steady rate until its context ends. The
// client retries through broker restarts (idempotently, so the input has no duplicates either);
// while the broker is down, Produce blocks once the client's buffer is full and the rate catches
// up afterwards.
type producer struct {
	records, bad atomic.Int64
}

func (p *producer) run(ctx context.Context, cl *kgo.Client, topic string, rate float64, cfg gen.Config) error {
	g, err := gen.New(cfg)
	if err != nil {
		return err
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	start := time.Now()
	for i := 0; ctx.Err() == nil; i++ {
		if i%50 == 0 {
			if ahead := time.Duration(float64(i)/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
				select {
				case <-ctx.Done():
					continue
				case <-time.After(ahead):
				}
			}
		}
		now := time.Now()
		rec := g.Next(now)
		r := &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value, Timestamp: now}
		if rec.Bad != gen.NotBad {
			r.Headers = []kgo.RecordHeader{{Key: badHeader, Value: []byte(rec.Bad.String())}}
		}
		wg.Add(1)
		// The records are produced with a background context: one the client accepted is delivered
		// even when the run's time is up, so that the count is the input's.
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
				return
			}
			p.records.Add(1)
			if len(r.Headers) > 0 {
				p.bad.Add(1)
			}
		})
	}
	wg.Wait()
	return firstErr
}

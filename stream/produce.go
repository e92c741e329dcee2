package stream

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrChangelogLost is returned by Run when a changelog topic disappeared (was deleted, or deleted and
// created again) while the runtime ran. The local state then is the only copy of what the changelog
// held, and no cycle may commit without its changelog records, so the runtime stops instead of
// committing outputs whose state nobody could restore.
var ErrChangelogLost = errors.New("stream: changelog topic lost")

// ErrProduce is returned by Run, wrapped with the topic and the broker's or client's error, when a
// record cannot be produced for a reason that processing again cannot fix: authorization, a record
// larger than the topic's max.message.bytes, a fenced producer. The cycle holding the record was
// aborted, so its input is not lost: it is processed again when the runtime next starts.
var ErrProduce = errors.New("stream: produce failed")

// produceState is what the produces of the open cycle did, and whether outputs can be written at all.
//
// franz-go reports a produce only through the record's promise, on its own goroutines, and
// GroupTransactSession.End does not look at promises: a record that failed (a deleted topic is
// failed after UnknownTopicRetries metadata loads) is simply not in the transaction, which commits
// without it. So the runtime flushes before End, reads the failures collected here, and aborts when
// there is any (see Runtime.endCycle).
type produceState struct {
	mu sync.Mutex
	// first is the first failure of the cycle that is not about a missing topic; unknown the
	// topics whose records failed because the broker does not know them.
	first   error
	unknown map[string]error
	// blocked is set while outputs cannot be written (a missing output topic, waiting to be
	// created): the runtime is not ready.
	blocked atomic.Bool
}

// add records a failed produce. Records failed by the runtime's own abort (ErrAborting) are not a
// cause of anything and are left out.
func (p *produceState) add(rec *kgo.Record, err error) {
	if errors.Is(err, kgo.ErrAborting) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID) {
		if p.unknown == nil {
			p.unknown = map[string]error{}
		}
		if _, ok := p.unknown[rec.Topic]; !ok {
			p.unknown[rec.Topic] = err
		}
		return
	}
	if p.first == nil {
		p.first = fmt.Errorf("%w: to %s: %w", ErrProduce, rec.Topic, err)
	}
}

// failures returns the cycle's failures: the first one that is not about a missing topic, and the
// missing topics, sorted. Call it after a flush, when no promise of the cycle is outstanding.
func (p *produceState) failures() (first error, unknown []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for t := range p.unknown {
		unknown = append(unknown, t)
	}
	sort.Strings(unknown)
	return p.first, unknown
}

// reset forgets the ended cycle's failures.
func (p *produceState) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.first = nil
	clear(p.unknown)
}

// onProduced is the promise of every produced record. A failure fails the cycle: the transaction is
// aborted and its input processed again, so nothing is lost.
func (r *Runtime) onProduced(rec *kgo.Record, err error) {
	if err != nil {
		r.produce.add(rec, err)
		r.m.produceFailures.WithLabelValues(rec.Topic).Inc()
	}
}

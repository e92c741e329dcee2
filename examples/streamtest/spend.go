// Package spend is an example of a stateful custom operator and of its unit test without Kafka
// (spend_test.go, with stream/streamtest).
//
// CardSpend keeps every card's running total in a state store and emits it with each transaction.
// The total survives aborted cycles, crashes and the loss of the local disk because it lives in the
// task's store, which the runtime commits with the transaction and restores from its changelog.
// The operator also counts the transactions it summed in a Prometheus counter, registered with the
// task's registry.
package spend

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/stream"
)

// CardSpend is the operator: a factory of one processor per task (input partition).
type CardSpend struct {
	// Topic receives {"card_id":...,"total":...} after every transaction.
	Topic string
	// Amount is the index of the amount field in the source format (Format.FieldIndex).
	Amount int

	once   sync.Once
	summed prometheus.Counter
	regErr error
}

// Name implements stream.Operator; it also names the operator's store.
func (c *CardSpend) Name() string { return "card-spend" }

// Stores implements stream.Stateful: the runtime restores the store before Open.
func (c *CardSpend) Stores() []string { return []string{c.Name()} }

// OutputTopics implements stream.OutputTopics.
func (c *CardSpend) OutputTopics() []string { return []string{c.Topic} }

// Open implements stream.Operator. Every task of the instance opens the operator, and a task
// reopens after a rebalance, so the counter is made and registered once per operator.
func (c *CardSpend) Open(t *stream.Task) (stream.Processor, error) {
	c.once.Do(func() {
		c.summed = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spend_transactions_total",
			Help: "Transactions added to a card's total.",
		})
		if reg := t.Registerer(); reg != nil {
			if err := reg.Register(c.summed); err != nil {
				var already prometheus.AlreadyRegisteredError
				if !errors.As(err, &already) {
					c.regErr = err
				}
			}
		}
	})
	if c.regErr != nil {
		return nil, c.regErr
	}
	st, err := t.Store(c.Name())
	if err != nil {
		return nil, err
	}
	return &spender{op: c, store: st}, nil
}

type spender struct {
	op    *CardSpend
	store *state.Store
	n     float64 // transactions summed in the open cycle
	buf   []byte  // reused for every output: Emit copies it
	val   [8]byte
}

// Process adds the transaction's amount to its card's total.
func (p *spender) Process(t *stream.Task, ev *stream.Event) error {
	amount, ok := ev.Number(p.op.Amount)
	if !ok {
		return stream.Reject(stream.ReasonMissingField, "no amount")
	}
	total := 0.0
	v, found, err := p.store.Get(ev.Key)
	if err != nil {
		return err
	}
	if found {
		total = math.Float64frombits(binary.BigEndian.Uint64(v))
	}
	total += amount
	binary.BigEndian.PutUint64(p.val[:], math.Float64bits(total))
	p.store.Set(ev.Key, p.val[:])
	p.buf = append(p.buf[:0], `{"card_id":"`...)
	p.buf = append(p.buf, ev.Key...)
	p.buf = append(p.buf, `","total":`...)
	p.buf = strconv.AppendFloat(p.buf, total, 'f', 2, 64)
	p.buf = append(p.buf, '}')
	t.Emit(p.op.Topic, ev.Key, p.buf, ev.Time)
	p.n++
	return nil
}

// Committed implements stream.Committer: the counter counts committed work only, so an aborted
// and replayed cycle is counted once.
func (p *spender) Committed(*stream.Task) {
	p.op.summed.Add(p.n)
	p.n = 0
}

// Rewind implements stream.Rewinder: the aborted cycle's transactions are not counted.
func (p *spender) Rewind(*stream.Task) error {
	p.n = 0
	return nil
}

// Close implements stream.Processor.
func (p *spender) Close() error { return nil }

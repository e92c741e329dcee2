package stream

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
)

// Pipeline describes one streaming job: the source topic and its format, the operators every accepted
// event passes through, and where rejected records go. A Pipeline is plain data; NewRuntime runs it.
// The YAML config compiles into a Pipeline, and Go users may build one directly (see examples/embed).
type Pipeline struct {
	// Name is the application id: the consumer group, the transactional id prefix and the prefix of
	// internal topics. Letters, digits, '.', '_' and '-'.
	Name string
	// Source is the input topic and how its records are decoded and validated.
	Source Source
	// Operators see every accepted event, in this order, on the task that owns its partition.
	Operators []Operator
	// DeadLetterTopic receives every record that is rejected, with the reason in its headers.
	DeadLetterTopic string
	// LateTopic receives records that arrive after the windows they belong to have closed
	// (optional: without it, late records go to the dead-letter topic with reason late_record).
	LateTopic string
	// Labels, when set, is a second input: label records keyed by the entity key, in a topic with
	// the source's partition count, so that the label of an event reaches the task that scored it.
	// Operators see them through LabelListener; they do not move the watermark.
	Labels *Source
	// Features names the per-event computed features (window aggregates as of the event) that
	// operators write into Event.Features and later operators read, in this order.
	Features []string
	// OutputEncoders rewrite the JSON values emitted to a topic into its wire format (AvroOutput),
	// by topic; a topic without one gets the JSON. Run registers each encoder's schema before it
	// consumes.
	OutputEncoders map[string]OutputEncoder
	// Topics are the output topics' settings, by topic: how their records are timestamped and
	// how Run creates them (topicsettings.go). A topic without an entry gets the zero settings:
	// processing-time timestamps, the broker's topic defaults.
	Topics map[string]TopicSettings
}

// Source is the input of a pipeline.
type Source struct {
	Topic  string
	Format Format
}

// Operator is a processing step. An Operator is a factory: the runtime calls Open once per task
// (input partition) and feeds that task's events to the returned Processor on the task's goroutine.
type Operator interface {
	// Name identifies the operator in logs, metrics and the names of its state stores.
	Name() string
	// Open creates the operator's instance for a task. It is called when the task's partition is
	// assigned, before the task processes anything.
	Open(t *Task) (Processor, error)
}

// LabelListener is implemented by processors that learn from labels (Pipeline.Labels). OnLabel gets
// each decoded label record on the task's goroutine; a *Rejection sends it to the dead letters.
type LabelListener interface {
	OnLabel(t *Task, label *Event) error
}

// Processor is one task's instance of an operator. Its methods are called from the task's goroutine
// only, so it needs no locks.
type Processor interface {
	// Process handles one accepted event. Outputs go through t.Emit. Returning a *Rejection (see
	// Reject) sends the event to the dead-letter topic and processing continues; ErrDrop ends the
	// event's processing without a dead letter; any other error is fatal: the open transaction is aborted and the runtime stops, so that nothing is half done.
	Process(t *Task, ev *Event) error
	// Close releases the processor's resources when its partition is revoked or the runtime stops.
	Close() error
}

// ErrDrop is returned by Processor.Process to end an event's processing without a dead letter:
// later operators do not see it and it does not move the watermark, as if it had never arrived.
// The operator that drops an event is responsible for counting it (Dedup counts duplicates): bad
// input is never dropped silently, so ErrDrop is for events that are deliberately not processed,
// not for events that cannot be.
var ErrDrop = errors.New("stream: event dropped")

// OutputTopics is implemented by operators that produce to fixed topics, so the runtime can check or
// create them at start.
type OutputTopics interface {
	OutputTopics() []string
}

// CompactedTopics is implemented by operators that keep the latest value per key in a topic of their
// own (a model registry): the runtime creates each, compacted, with one partition.
type CompactedTopics interface {
	CompactedTopics(app string) []string
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)

// ErrBadPipeline wraps every pipeline validation error.
var ErrBadPipeline = errors.New("stream: bad pipeline")

// Validate reports every problem with the pipeline's shape at once.
func (p *Pipeline) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrBadPipeline, fmt.Sprintf(format, args...)))
	}
	if !nameRE.MatchString(p.Name) {
		bad("name %q: use 1 to 200 letters, digits, '.', '_' or '-'", p.Name)
	}
	if !nameRE.MatchString(p.Source.Topic) {
		bad("source topic %q is not a valid topic name", p.Source.Topic)
	}
	if p.Source.Format == nil {
		bad("source has no format")
	}
	if !nameRE.MatchString(p.DeadLetterTopic) {
		bad("dead-letter topic %q is not a valid topic name", p.DeadLetterTopic)
	}
	if p.DeadLetterTopic == p.Source.Topic {
		bad("the dead-letter topic cannot be the source topic %q", p.Source.Topic)
	}
	if l := p.Labels; l != nil {
		if !nameRE.MatchString(l.Topic) || l.Topic == p.Source.Topic || l.Topic == p.DeadLetterTopic {
			bad("labels topic %q is not a valid topic name, or is the source or dead-letter topic", l.Topic)
		}
		if l.Format == nil {
			bad("labels have no format")
		}
	}
	if p.LateTopic != "" && (!nameRE.MatchString(p.LateTopic) || p.LateTopic == p.Source.Topic) {
		bad("late topic %q is not a valid topic name, or is the source", p.LateTopic)
	}
	names := map[string]bool{}
	stores := map[string]string{}
	for i, op := range p.Operators {
		if op == nil {
			bad("operator %d is nil", i)
			continue
		}
		if names[op.Name()] {
			bad("two operators are named %q", op.Name())
		}
		names[op.Name()] = true
		if d, ok := op.(*Dedup); ok {
			if i != 0 {
				bad("operator %q: dedup must be the first operator, so that no other sees a duplicate", op.Name())
			}
			if err := d.Validate(); err != nil {
				errs = append(errs, err)
			}
		}
		if st, ok := op.(Stateful); ok {
			for _, s := range st.Stores() {
				if !nameRE.MatchString(s) || s == taskStore {
					bad("operator %q: store name %q is invalid or reserved", op.Name(), s)
				}
				if other, dup := stores[s]; dup {
					bad("operators %q and %q both declare store %q", other, op.Name(), s)
				}
				stores[s] = op.Name()
			}
		}
		if ot, ok := op.(OutputTopics); ok {
			for _, topic := range ot.OutputTopics() {
				if topic == p.Source.Topic {
					bad("operator %q writes to the source topic %q", op.Name(), topic)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// outputTopics lists every topic the pipeline writes to, without duplicates.
func (p *Pipeline) outputTopics() []string {
	seen := map[string]bool{}
	var out []string
	add := func(t string) {
		if t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	add(p.DeadLetterTopic)
	add(p.LateTopic)
	for _, op := range p.Operators {
		if ot, ok := op.(OutputTopics); ok {
			for _, t := range ot.OutputTopics() {
				add(t)
			}
		}
	}
	return out
}

// storeNames lists every store the operators declare, sorted.
func (p *Pipeline) storeNames() []string {
	var out []string
	for _, op := range p.Operators {
		if st, ok := op.(Stateful); ok {
			out = append(out, st.Stores()...)
		}
	}
	sort.Strings(out)
	return out
}

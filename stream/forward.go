package stream

// Forward is the pass-through operator: it produces every accepted event's original value, keyed by
// the entity key and stamped with the event time, to a topic. With the source's validation in front
// of it, it publishes the "clean" stream: every record that passed decoding, exactly once.
type Forward struct {
	OpName string // default "forward"
	Topic  string
}

// Name implements Operator.
func (f *Forward) Name() string {
	if f.OpName == "" {
		return "forward"
	}
	return f.OpName
}

// OutputTopics implements OutputTopics.
func (f *Forward) OutputTopics() []string { return []string{f.Topic} }

// Open implements Operator. Forward keeps no state, so one processor serves every task.
func (f *Forward) Open(*Task) (Processor, error) { return f, nil }

// Process implements Processor.
func (f *Forward) Process(t *Task, ev *Event) error {
	t.Emit(f.Topic, ev.Key, ev.Record.Value, ev.Time)
	return nil
}

// Close implements Processor.
func (f *Forward) Close() error { return nil }

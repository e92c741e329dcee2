package console

import (
	"github.com/streamd/streamd/model"
	"github.com/streamd/streamd/stream"
)

// Node kinds of a Graph.
const (
	KindInput    = "input"    // a topic the pipeline reads
	KindStage    = "stage"    // decode and validate
	KindOperator = "operator" // one of the pipeline's operators
	KindOutput   = "output"   // a topic the pipeline writes
)

// Graph is a pipeline's shape: its inputs, the decode-and-validate stage, its operators in order and
// the topics they write. GraphOf builds it; the Sampler adds the rates.
type Graph struct {
	App   string `json:"app"`
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// Node is one box of the graph. Topic, for inputs and outputs, is the topic whose committed counter
// gives the node's rate (records consumed from an input, produced to an output).
type Node struct {
	ID     string   `json:"id"`
	Kind   string   `json:"kind"`
	Label  string   `json:"label"`
	Detail string   `json:"detail"`
	Topic  string   `json:"topic,omitempty"`
	Stores []string `json:"stores"`
	// Rate is per second over the last sample interval, Total since the start; both filled by the
	// Sampler.
	Rate  float64 `json:"rate"`
	Total float64 `json:"total"`
}

// Edge is one arrow: records flow from From to To. Its rate is To's when To is an output topic
// (what the operator writes there), From's otherwise.
type Edge struct {
	From string  `json:"from"`
	To   string  `json:"to"`
	Rate float64 `json:"rate"`
}

// Node ids of the fixed stages.
const (
	idSource   = "source"
	idLabels   = "labels"
	idValidate = "validate"
)

// GraphOf describes p. Operators that say which topics they write (stream.OutputTopics) get an edge
// to each; those that route late records (stream.LateReporter) one to the late topic (or, without
// one, the dead-letter topic); model operators learn from the labels topic.
func GraphOf(p *stream.Pipeline) Graph {
	g := Graph{App: p.Name}
	outputs := map[string]bool{}
	output := func(from, topic, detail string) {
		if topic == "" {
			return
		}
		id := "topic:" + topic
		if !outputs[topic] {
			outputs[topic] = true
			g.Nodes = append(g.Nodes, Node{ID: id, Kind: KindOutput, Label: topic, Detail: detail, Topic: topic, Stores: []string{}})
		}
		g.Edges = append(g.Edges, Edge{From: from, To: id})
	}
	g.Nodes = append(g.Nodes, Node{ID: idSource, Kind: KindInput, Label: p.Source.Topic, Detail: "source", Topic: p.Source.Topic, Stores: []string{}})
	if p.Labels != nil {
		g.Nodes = append(g.Nodes, Node{ID: idLabels, Kind: KindInput, Label: p.Labels.Topic, Detail: "labels", Topic: p.Labels.Topic, Stores: []string{}})
	}
	g.Nodes = append(g.Nodes, Node{ID: idValidate, Kind: KindStage, Label: "decode & validate", Detail: "accepted events", Stores: []string{}})
	g.Edges = append(g.Edges, Edge{From: idSource, To: idValidate})

	type pending struct{ from, topic, detail string }
	var outs []pending // added after the operators, so that the nodes list inputs, stages, operators, outputs
	for _, op := range p.Operators {
		id := "op:" + op.Name()
		n := Node{ID: id, Kind: KindOperator, Label: op.Name(), Detail: operatorKind(op), Stores: []string{}}
		if s, ok := op.(stream.Stateful); ok {
			n.Stores = append(n.Stores, s.Stores()...)
		}
		g.Nodes = append(g.Nodes, n)
		g.Edges = append(g.Edges, Edge{From: idValidate, To: id})
		if _, ok := op.(*model.Operator); ok && p.Labels != nil {
			g.Edges = append(g.Edges, Edge{From: idLabels, To: id})
		}
		if o, ok := op.(stream.OutputTopics); ok {
			for _, t := range o.OutputTopics() {
				outs = append(outs, pending{id, t, outputDetail(op)})
			}
		}
		if _, ok := op.(stream.LateReporter); ok {
			if p.LateTopic != "" {
				outs = append(outs, pending{id, p.LateTopic, "late records"})
			} else {
				outs = append(outs, pending{id, p.DeadLetterTopic, "dead letters"})
			}
		}
	}
	outs = append([]pending{{idValidate, p.DeadLetterTopic, "dead letters"}}, outs...)
	for _, o := range outs {
		output(o.from, o.topic, o.detail)
	}
	return g
}

// operatorKind names what an operator does, for its box.
func operatorKind(op stream.Operator) string {
	switch op.(type) {
	case *stream.Forward:
		return "forward"
	case *model.Operator:
		return "score & learn"
	}
	if _, ok := op.(stream.LateReporter); ok {
		return "window"
	}
	if _, ok := op.(stream.Stateful); ok {
		return "stateful"
	}
	return "operator"
}

// outputDetail says what an operator writes, for its output topic's box.
func outputDetail(op stream.Operator) string {
	switch op.(type) {
	case *stream.Forward:
		return "clean events"
	case *model.Operator:
		return "predictions"
	}
	if _, ok := op.(stream.LateReporter); ok {
		return "window results"
	}
	return "output"
}

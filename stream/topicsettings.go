package stream

import (
	"strconv"
)

// TopicSettings say how the runtime stamps the records of one output topic and how it creates the
// topic when it is missing (Config.CreateTopics).
//
// # Record timestamps
//
// Kafka's time-based retention (retention.ms, seven days by default) deletes a segment once its
// newest record timestamp is older than the retention, and it rolls segments by the first record's
// timestamp (segment.ms). Outputs stamped with their event time therefore live only as long as the
// event time is recent: a pipeline over last year's history writes outputs that the broker rolls
// into a segment per batch and deletes at its next retention check, although streamd committed
// them. So by default every output record carries the time it was produced (processing time: the
// producer stamps a record whose timestamp is unset), and its event time travels in the payload
// (predictions' event_time, window results' window) and always in the HeaderEventTime header.
// EventTime asks for event-time timestamps instead, for consumers that join or window by the
// record timestamp; the topic's retention must then cover the oldest event time written.
//
// Dead letters and late records carry no event time of their own (the record may have none): by
// default they are stamped with processing time and the rejected record's own timestamp is in
// HeaderSourceTimestamp, which streamd dlq replay restores; with EventTime they keep the record's
// own timestamp, as they did before.
type TopicSettings struct {
	// EventTime stamps the topic's records with their event time (dead letters and late records:
	// the source record's timestamp) instead of the time they are produced. Default false.
	EventTime bool
	// Configs are topic configs (retention.ms, cleanup.policy, segment.ms, min.insync.replicas,
	// ...) that Run gives the topic when it creates it, over streamd's own max.message.bytes. They
	// are not applied to a topic that exists: streamd does not alter topics it did not create.
	Configs map[string]string
	// ReplicationFactor of the topic when Run creates it; 0 takes Config.ReplicationFactor.
	ReplicationFactor int16
}

// Header names of output timestamps.
const (
	// HeaderEventTime is on every record an operator emits (Task.Emit, Task.EmitRecord): the
	// record's event time in Unix milliseconds, whatever its record timestamp is.
	HeaderEventTime = "streamd-event-time"
	// HeaderSourceTimestamp is on dead letters and late records stamped with processing time: the
	// rejected record's own timestamp in Unix milliseconds.
	HeaderSourceTimestamp = "streamd-source-timestamp"
)

// eventTimeTopics is the set of topics whose records carry event-time timestamps.
func (p *Pipeline) eventTimeTopics() map[string]bool {
	var m map[string]bool
	for topic, s := range p.Topics {
		if s.EventTime {
			if m == nil {
				m = map[string]bool{}
			}
			m[topic] = true
		}
	}
	return m
}

// topicCreation returns the configs and replication factor to create topic with: streamd's
// max.message.bytes (maxBytes), then the topic's own Configs, which win.
func (r *Runtime) topicCreation(topic string, maxBytes string) (map[string]*string, int16) {
	configs := map[string]*string{"max.message.bytes": &maxBytes}
	s := r.pipeline.Topics[topic]
	for k, v := range s.Configs {
		configs[k] = &v
	}
	rf := r.cfg.ReplicationFactor
	if s.ReplicationFactor != 0 {
		rf = s.ReplicationFactor
	}
	return configs, rf
}

// appendMillis formats ms for a header.
func appendMillis(dst []byte, ms int64) []byte { return strconv.AppendInt(dst, ms, 10) }

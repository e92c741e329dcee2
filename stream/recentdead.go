package stream

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DeadLetterInfo is one dead letter as the admin console lists it: where the rejected record came
// from and why it was rejected. Key and Value are copies of at most RecentDeadLetterBytes of the
// record's key and value; whoever shows them decides whether to (admin.console.dead_letter_contents).
type DeadLetterInfo struct {
	// Time is when the cycle that produced the dead letter committed.
	Time      time.Time `json:"time"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Reason    Reason    `json:"reason"`
	Field     string    `json:"field,omitempty"`
	Detail    string    `json:"detail"`
	Operator  string    `json:"operator,omitempty"`
	Key       []byte    `json:"key,omitempty"`
	Value     []byte    `json:"value,omitempty"`
	// ValueBytes is the record value's full length, when Value holds only its start.
	ValueBytes int `json:"value_bytes"`
}

// Bounds of the recent dead letters.
const (
	// RecentDeadLetters is how many dead letters the runtime keeps for RecentDeadLetters, the
	// newest; a task keeps at most as many per commit cycle, so a flood of rejections costs a
	// bounded copy per cycle.
	RecentDeadLetters = 100
	// RecentDeadLetterBytes caps the copy of each one's key and value.
	RecentDeadLetterBytes = 512
)

// deadLetterRing holds the newest committed dead letters. It has its own mutex, so that a reader
// never waits for a commit cycle (Runtime.mu is held while tasks settle).
type deadLetterRing struct {
	mu   sync.Mutex
	buf  [RecentDeadLetters]DeadLetterInfo
	next int // index of the next write
	n    int // entries held, up to len(buf)
}

// add appends the dead letters of a committed cycle, stamped with the commit time.
func (r *deadLetterRing) add(list []DeadLetterInfo, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range list {
		d.Time = at
		r.buf[r.next] = d
		r.next = (r.next + 1) % len(r.buf)
		r.n = min(r.n+1, len(r.buf))
	}
}

// recent returns the held dead letters, newest first. The slices inside are shared with the ring,
// which never writes into them again: callers must not modify them.
func (r *deadLetterRing) recent() []DeadLetterInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]DeadLetterInfo, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

// RecentDeadLetters returns up to RecentDeadLetters of the newest dead letters this instance
// produced in committed transactions, newest first. It is safe to call concurrently with Run; the
// returned entries must not be modified.
func (r *Runtime) RecentDeadLetters() []DeadLetterInfo { return r.deadRing.recent() }

// noteDeadLetter keeps a copy of a dead letter's origin for the open cycle, up to
// RecentDeadLetters per cycle. It runs only on rejections, not for every record.
func (c *cycleCounts) noteDeadLetter(rec *kgo.Record, rj *Rejection, operator string) {
	if len(c.recentDead) >= RecentDeadLetters {
		return
	}
	c.recentDead = append(c.recentDead, DeadLetterInfo{
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Reason: rj.Reason, Field: rj.Field, Detail: rj.Detail, Operator: operator,
		Key:        copyPrefix(rec.Key, RecentDeadLetterBytes),
		Value:      copyPrefix(rec.Value, RecentDeadLetterBytes),
		ValueBytes: len(rec.Value),
	})
}

// copyPrefix returns a copy of at most n bytes of b (nil for an empty b).
func copyPrefix(b []byte, n int) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b[:min(len(b), n)]...)
}

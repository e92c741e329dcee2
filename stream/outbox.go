package stream

import (
	"strconv"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

// outbox holds the records a task produces in one commit cycle. Records, headers and copied bytes come
// from slabs that are reused after the cycle ends: by then the producer has flushed (or aborted) every
// record, and franz-go keeps no reference to a record after its promise has run.
type outbox struct {
	recs []kgo.Record
	n    int
	hdrs []kgo.RecordHeader
	buf  []byte
	// keep bounds what reset keeps for the next cycle, in bytes; zero keeps the most (8192 records,
	// 24576 headers and 1MiB of bytes).
	keep int
	// held is the memory of the slabs allocated in this cycle and kept from earlier ones: a slab
	// that was outgrown stays alive until the cycle's records are produced, so it counts until
	// reset.
	held int
	// src caches the lineage header values of the source partition last seen: a task reads one
	// partition of one or two topics, so the topic and partition values are built once and shared
	// by every record's headers (nothing writes to a header value once produced), and only the
	// offset is formatted per record.
	src struct {
		topic         string
		partition     int32
		topicV, partV []byte
	}
}

func (o *outbox) record() *kgo.Record {
	if o.n == len(o.recs) {
		// Grow by allocating a new slab rather than appending: records handed out earlier in this
		// cycle are in flight and must not move.
		size := 2 * len(o.recs)
		if size < 256 {
			size = 256
		}
		o.recs = make([]kgo.Record, size)
		o.held += size * int(unsafe.Sizeof(kgo.Record{}))
		o.n = 0
	}
	r := &o.recs[o.n]
	o.n++
	*r = kgo.Record{}
	return r
}

// copy returns a copy of b in the cycle's byte slab. Like record, it never moves bytes handed out
// earlier in the cycle.
func (o *outbox) copy(b []byte) []byte {
	if b == nil {
		return nil
	}
	if cap(o.buf)-len(o.buf) < len(b) {
		size := 2 * cap(o.buf)
		if size < 64<<10 {
			size = 64 << 10
		}
		if size < len(b) {
			size = len(b)
		}
		o.buf = make([]byte, 0, size)
		o.held += size
	}
	start := len(o.buf)
	o.buf = append(o.buf, b...)
	return o.buf[start:len(o.buf):len(o.buf)]
}

func (o *outbox) copyString(s string) []byte {
	if cap(o.buf)-len(o.buf) < len(s) {
		return o.copy([]byte(s))
	}
	start := len(o.buf)
	o.buf = append(o.buf, s...)
	return o.buf[start:len(o.buf):len(o.buf)]
}

func (o *outbox) headers(n int) []kgo.RecordHeader {
	if cap(o.hdrs)-len(o.hdrs) < n {
		size := 2 * cap(o.hdrs)
		if size < 1024 {
			size = 1024
		}
		o.hdrs = make([]kgo.RecordHeader, 0, size)
		o.held += size * int(unsafe.Sizeof(kgo.RecordHeader{}))
	}
	start := len(o.hdrs)
	o.hdrs = o.hdrs[:start+n]
	// Cap the capacity so that an append by the caller (dead letters add headers) copies instead of
	// overwriting the next record's headers.
	return o.hdrs[start : start+n : start+n]
}

// lineage returns the three source headers for rec. Appending to the result allocates, which only
// dead letters do.
func (o *outbox) lineage(rec *kgo.Record) []kgo.RecordHeader {
	h := o.headers(3)
	o.fillLineage(h, rec)
	return h
}

// fillLineage writes rec's three lineage headers into h[:3].
func (o *outbox) fillLineage(h []kgo.RecordHeader, rec *kgo.Record) {
	if rec.Topic != o.src.topic || rec.Partition != o.src.partition || o.src.topicV == nil {
		// Outside the slabs, which are reused after each cycle: these live as long as the task.
		o.src.topic, o.src.partition = rec.Topic, rec.Partition
		o.src.topicV = []byte(rec.Topic)
		o.src.partV = strconv.AppendInt(nil, int64(rec.Partition), 10)
	}
	h[0] = kgo.RecordHeader{Key: HeaderSourceTopic, Value: o.src.topicV}
	h[1] = kgo.RecordHeader{Key: HeaderSourcePartition, Value: o.src.partV}
	var num [20]byte
	h[2] = kgo.RecordHeader{Key: HeaderSourceOffset, Value: o.copy(strconv.AppendInt(num[:0], rec.Offset, 10))}
}

// stamped returns the headers of an emitted record: rec's lineage and the table versions its
// event was enriched with (neither when rec is nil), the event time (HeaderEventTime), then extra
// headers for the caller to fill. The table headers' values must stay valid until the cycle ends.
func (o *outbox) stamped(rec *kgo.Record, tables []kgo.RecordHeader, eventTime int64, extra int) []kgo.RecordHeader {
	n := 1 + extra
	if rec != nil {
		n += 3 + len(tables)
	}
	h := o.headers(n)
	i := 0
	if rec != nil {
		o.fillLineage(h, rec)
		i = 3 + copy(h[3:], tables)
	}
	var num [20]byte
	h[i] = kgo.RecordHeader{Key: HeaderEventTime, Value: o.copy(strconv.AppendInt(num[:0], eventTime, 10))}
	return h
}

// reset makes the slabs reusable. Call only when no record of the cycle is in flight. Slabs that a
// burst grew large (all of a window's results at once) are let go, so that one burst does not pin
// its memory for the life of the task.
func (o *outbox) reset() {
	keepRecords, keepHeaders, keepBytes := 8192, 3*8192, 1<<20
	if most := keepRecords*int(unsafe.Sizeof(kgo.Record{})) + keepHeaders*int(unsafe.Sizeof(kgo.RecordHeader{})) + keepBytes; o.keep > 0 && o.keep < most {
		// Each slab in the proportion of the most.
		keepRecords = keepRecords * o.keep / most
		keepHeaders = keepHeaders * o.keep / most
		keepBytes = keepBytes * o.keep / most
	}
	o.n = 0
	if len(o.recs) > keepRecords {
		o.recs = nil
	}
	if cap(o.hdrs) > keepHeaders {
		o.hdrs = nil
	}
	if cap(o.buf) > keepBytes {
		o.buf = nil
	}
	o.hdrs = o.hdrs[:0]
	o.buf = o.buf[:0]
	o.held = len(o.recs)*int(unsafe.Sizeof(kgo.Record{})) + cap(o.hdrs)*int(unsafe.Sizeof(kgo.RecordHeader{})) + cap(o.buf)
}

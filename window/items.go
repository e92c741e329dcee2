package window

import (
	"bytes"
	"encoding/binary"
	"math"
)

// Session and sliding windows keep each key's sessions or panes as one list value, and their
// timers under prefixTimer. This file holds that shared machinery.

// item is one session (start, last event time) or one pane (start, unused) with its encoded state.
type item struct {
	start, last int64
	state       []byte
}

// decodeList decodes a list value into p.list: count, then per item start, last, state.
func (p *processor) decodeList(v []byte) error {
	p.list = p.list[:0]
	n, k := binary.Uvarint(v)
	if k <= 0 {
		return errCorrupt
	}
	v = v[k:]
	for range n {
		if len(v) < 16 {
			return errCorrupt
		}
		it := item{start: getTime(v), last: getTime(v[8:])}
		v = v[16:]
		l, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < l {
			return errCorrupt
		}
		it.state = v[k : k+int(l)]
		v = v[k+int(l):]
		p.list = append(p.list, it)
	}
	return nil
}

// loadList reads a key's session or pane list into p.list (empty when the key has none), leaving
// the key (prefix + key) in p.keyBuf for the write that usually follows. The items alias the
// store's value: valid until the next store read.
func (p *processor) loadList(prefix byte, key []byte) (bool, error) {
	p.keyBuf = append(append(p.keyBuf[:0], prefix), key...)
	p.list = p.list[:0]
	v, ok, err := p.store.Get(p.keyBuf)
	if err != nil || !ok {
		return false, err
	}
	return true, p.decodeList(v)
}

func (p *processor) encodeList(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(p.list)))
	for _, it := range p.list {
		dst = putTime(putTime(dst, it.start), it.last)
		dst = binary.AppendUvarint(dst, uint64(len(it.state)))
		dst = append(dst, it.state...)
	}
	return dst
}

// scratch returns a reusable buffer for the i-th item's re-encoded state: list items alias the
// store's value, which the next store write invalidates, so new states are built here.
func (p *processor) scratch(i int) []byte {
	for len(p.spare) <= i {
		p.spare = append(p.spare, nil)
	}
	return p.spare[i][:0]
}

func sortItems(list []item) {
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && list[j].start < list[j-1].start; j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
}

// decodeItems decodes a session or pane list into fresh memory (for inspection off the hot path).
func decodeItems(v []byte) ([]item, error) {
	var p processor
	if err := p.decodeList(v); err != nil {
		return nil, err
	}
	out := make([]item, len(p.list))
	for i, it := range p.list {
		out[i] = item{start: it.start, last: it.last, state: append([]byte(nil), it.state...)}
	}
	return out, nil
}

func (p *processor) timerKey(fire, start int64, key []byte) []byte {
	p.key2 = append(putTime(putTime(append(p.key2[:0], prefixTimer), fire), start), key...)
	return p.key2
}

// fireTimers deletes every timer due at watermark wm, calling due with its key and start (session
// start, 0 for panes) after the deletion, and sets nextFire to the earliest timer left. The due
// timers are collected before any is handled: handling writes to the store the scan reads.
//
// The scan starts at timersFrom, past the timers fired earlier: their deletions stay in the store as
// tombstones until a compaction drops them, and a key rewritten on every event (a session's timer
// moves with its end) leaves one per event, so a scan from the start of the timer range would step
// over all of them on every firing.
func (p *processor) fireTimers(wm int64, due func(key []byte, start int64) error) error {
	lower := []byte{prefixTimer}
	if p.timersFrom != math.MinInt64 {
		lower = putTime(append(p.timerLower[:0], prefixTimer), p.timersFrom)
		p.timerLower = lower
	}
	it, err := p.store.NewIter(lower, []byte{prefixTimer + 1})
	if err != nil {
		return err
	}
	p.nextFire = math.MaxInt64
	var timerKeys [][]byte
	for ; it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 17 {
			continue
		}
		fire := getTime(k[1:9])
		if fire > wm {
			p.nextFire = fire
			break
		}
		timerKeys = append(timerKeys, bytes.Clone(k))
	}
	if err := it.Close(); err != nil {
		return err
	}
	// Every timer due at wm is handled below, and a timer set later is due after wm: a session's
	// or a key's panes' timer lies beyond the watermark of the event that sets it, or the event is
	// late (and sets none).
	p.timersFrom = wm + 1
	for _, k := range timerKeys {
		start, key := getTime(k[9:17]), k[17:]
		p.store.Delete(k)
		if err := due(key, start); err != nil {
			return err
		}
	}
	return nil
}

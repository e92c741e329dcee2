package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/state"
)

// models is one task's learning state: the learners, the scaler they share, each model's
// evaluation, the drift detector on the champion, which model is champion, and the counters that
// order the learning log.
type models struct {
	learners  []online.Learner
	evals     []*evaluation
	drift     *driftDetector
	champion  int
	scaler    *scaler
	seq       int64 // examples learned
	snapSeq   int64 // seq of the last snapshot
	version   int64 // the merge version the models started from (1 before any merge)
	mergeBase int64 // seq when that version was adopted: examples since weigh this replica in a merge
	// classCounts are the labels learned per class, for balanced class weights (nil without).
	classCounts []int64
}

func newModels(o *Operator) (*models, error) {
	var err error
	m := &models{champion: o.champion, scaler: newScaler(len(o.layout.numeric)), version: 1}
	for i, ms := range o.spec.Models {
		var l online.Learner
		if c := o.catalogs[i]; c != nil {
			l = newOfflineLearner(c, ms.Offline)
		} else if l, err = online.New(ms.Learner); err != nil {
			return nil, err
		}
		m.learners = append(m.learners, l)
		m.evals = append(m.evals, newEvaluation(l.Task(), o.nclass[i]))
	}
	if o.balancedK > 0 {
		m.classCounts = make([]int64, o.balancedK)
	}
	if m.drift, err = newDriftDetector(o.spec.Drift); err != nil {
		return nil, err
	}
	return m, nil
}

// learnExample is one prequential step (see processor.learn). Replaying the same examples in the
// same order gives the same state, bit for bit.
//
// probs are the multiclass models' class probabilities before learning (Operator.probOff), or nil
// when they were not kept (a prediction kept by an older version).
//
// It returns the drift detection this example caused, if any, and what the action did: the
// caller that learns live reports it (log, metrics, the drift-events topic); a replay does not,
// since the detection was reported when the example was first learned.
func (m *models) learnExample(o *Operator, r *raw, y float64, scores, probs []float64, pre *[]float64, vec *online.Vector, c *taskCounts) detection {
	for i, e := range m.evals {
		var pr []float64
		if k := o.nclass[i]; k > 0 && probs != nil {
			pr = probs[o.probOff[i] : o.probOff[i]+k]
		}
		e.update(scores[i], y, pr)
	}
	var det detection
	if m.drift != nil {
		ch := m.champion
		det.value = m.drift.signal(m.evals[ch], scores[ch], y)
		if m.drift.update(det.value) {
			if c.drifts != nil {
				c.drifts[ch]++
			}
			det.fired, det.model = true, ch
			m.onDrift(o, &det)
		}
	}
	*pre = o.layout.preStandardize(r, *pre)
	learnScaler(m.scaler, *pre)
	*vec = o.layout.vector(r, m.scaler, *vec)
	if c := int(y); m.classCounts != nil && c >= 0 && c < len(m.classCounts) && float64(c) == y {
		m.classCounts[c]++
	}
	for i, l := range m.learners {
		if o.weighted[i] {
			if wl, ok := l.(online.WeightedLearner); ok {
				wl.LearnWeighted(*vec, y, o.classWeight(i, y, m.classCounts))
				continue
			}
		}
		l.Learn(*vec, y)
	}
	m.seq++
	return det
}

// detection is a drift detection and what its action did.
type detection struct {
	fired bool
	model int     // the champion whose signal changed
	value float64 // the example's signal
	// after is the champion after the action; lossBefore and lossAfter the rolling losses of the
	// model and of the best challenger (promote_best_challenger); forgot: reset made the model
	// forget what it had learned (updates of them).
	after                 int
	lossBefore, lossAfter float64
	forgot                int64
}

// onDrift applies the configured action and says in d what it did. alert: nothing but the
// report. reset: the champion forgets and relearns from now (cold again until its min examples).
// promote_best_challenger: the model with the best rolling loss becomes champion, when it beats
// the champion.
func (m *models) onDrift(o *Operator, d *detection) {
	d.lossBefore = m.evals[m.champion].rollingLoss()
	d.lossAfter = d.lossBefore
	switch o.spec.Drift.Action {
	case "reset":
		d.forgot = m.learners[m.champion].Updates()
		m.learners[m.champion].Reset()
		m.evals[m.champion].resetRolling()
	case "promote_best_challenger":
		best := m.champion
		for i, e := range m.evals {
			if i != best && e.rollingLoss() < m.evals[best].rollingLoss() {
				best = i
			}
		}
		d.lossAfter = m.evals[best].rollingLoss()
		m.champion = best
	}
	d.after = m.champion
	m.drift.reset()
}

// Snapshot layout: "s/meta" holds (seq, chunks); "s/NNNN" the chunks of the encoded state, cut so
// that no changelog record approaches Kafka's message size limit. The learning log is a ring of
// SnapshotEvery keys "l/NNNNNNNN"; entries older than the snapshot are ignored on replay and
// overwritten later, so the log needs no tombstones.
const (
	snapMeta  = "s/meta"
	chunkSize = 256 << 10
	logPrefix = "l/"
	logEnd    = "l0"
)

func chunkKey(i int) []byte { return fmt.Appendf(nil, "s/%04d", i) }

func logKey(dst []byte, slot int64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, logPrefix...), uint64(slot))
}

const stateVersion = 1

func (m *models) encode(dst []byte) []byte {
	dst = append(dst, stateVersion)
	dst = binary.AppendVarint(dst, m.seq)
	dst = binary.AppendVarint(dst, m.version)
	dst = binary.AppendVarint(dst, m.mergeBase)
	dst = binary.AppendUvarint(dst, uint64(m.champion))
	dst = appendScaler(dst, m.scaler)
	dst = binary.AppendUvarint(dst, uint64(len(m.learners)))
	for i, l := range m.learners {
		dst = appendBlob(dst, l.AppendState(nil))
		dst = appendBlob(dst, m.evals[i].appendState(nil))
	}
	if m.drift != nil {
		// The signal first (a byte no detector encoding starts with), so that a restore under
		// another signal starts the detector over instead of mixing losses and errors.
		dst = appendBlob(dst, m.drift.appendState([]byte{m.drift.signalByte()}))
	} else {
		dst = appendBlob(dst, nil)
	}
	// The balanced class counts come last, and only when kept: a state saved before them ends
	// before them, and decodes with counts of 0.
	if m.classCounts != nil {
		b := make([]byte, 0, 8*len(m.classCounts))
		for _, n := range m.classCounts {
			b = binary.AppendUvarint(b, uint64(n))
		}
		dst = appendBlob(dst, b)
	}
	return dst
}

func appendBlob(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func readBlob(b []byte) ([]byte, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, errCorrupt
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

func (m *models) decode(b []byte) error {
	if len(b) < 1 || b[0] != stateVersion {
		return fmt.Errorf("%w: unknown state version", errCorrupt)
	}
	b = b[1:]
	var k int
	if m.seq, k = binary.Varint(b); k <= 0 {
		return errCorrupt
	}
	b = b[k:]
	if m.version, k = binary.Varint(b); k <= 0 {
		return errCorrupt
	}
	b = b[k:]
	if m.mergeBase, k = binary.Varint(b); k <= 0 {
		return errCorrupt
	}
	b = b[k:]
	ch, k := binary.Uvarint(b)
	if k <= 0 || ch >= uint64(len(m.learners)) {
		return errCorrupt
	}
	m.champion = int(ch)
	b = b[k:]
	var err error
	if b, err = decodeScaler(b, m.scaler); err != nil {
		return err
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n != uint64(len(m.learners)) {
		return fmt.Errorf("%w: %d models stored, %d configured", errCorrupt, n, len(m.learners))
	}
	b = b[k:]
	for i, l := range m.learners {
		var blob []byte
		if blob, b, err = readBlob(b); err != nil {
			return err
		}
		if err := l.DecodeState(blob); err != nil {
			return err
		}
		if blob, b, err = readBlob(b); err != nil {
			return err
		}
		if err := m.evals[i].decodeState(blob); err != nil {
			return err
		}
	}
	blob, b, err := readBlob(b)
	if err != nil {
		return err
	}
	if m.drift != nil && len(blob) > 0 {
		if err := m.drift.decodeState(blob); err != nil {
			return err
		}
	}
	if m.classCounts != nil {
		clear(m.classCounts)
		if len(b) > 0 {
			if blob, _, err = readBlob(b); err != nil {
				return err
			}
			for i := range m.classCounts {
				n, k := binary.Uvarint(blob)
				if k <= 0 {
					break // counts of fewer classes (a model since given more): the rest start at 0
				}
				m.classCounts[i], blob = int64(n), blob[k:]
			}
		}
	}
	return nil
}

// snapshot writes the whole state and moves the log's start.
func (m *models) snapshot(st *state.Store, buf *[]byte) {
	*buf = m.encode((*buf)[:0])
	data := *buf
	chunks := (len(data) + chunkSize - 1) / chunkSize
	for i := 0; i < chunks; i++ {
		st.Set(chunkKey(i), data[i*chunkSize:min((i+1)*chunkSize, len(data))])
	}
	var meta [16]byte
	binary.BigEndian.PutUint64(meta[:], uint64(m.seq))
	binary.BigEndian.PutUint64(meta[8:], uint64(chunks))
	st.Set([]byte(snapMeta), meta[:])
	m.snapSeq = m.seq
}

// appendLogEntry encodes one learned example for the log: its sequence number (the seq before it
// was learned), label, the scores made before learning, the raw features, and the multiclass
// models' probabilities (last, and absent from entries written before they were kept).
func appendLogEntry(dst []byte, seq int64, r *raw, y float64, scores, probs []float64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(seq))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(y))
	dst = binary.AppendUvarint(dst, uint64(len(scores)))
	for _, s := range scores {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s))
	}
	dst = r.encode(dst)
	for _, s := range probs {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s))
	}
	return dst
}

// loadModels rebuilds a task's models from its store: the last snapshot, then every logged example
// after it, in order.
func loadModels(o *Operator, st *state.Store) (*models, error) {
	m, err := newModels(o)
	if err != nil {
		return nil, err
	}
	meta, ok, err := st.Get([]byte(snapMeta))
	if err != nil {
		return nil, err
	}
	if ok {
		if len(meta) != 16 {
			return nil, errCorrupt
		}
		seq, chunks := int64(binary.BigEndian.Uint64(meta)), int(binary.BigEndian.Uint64(meta[8:]))
		var data []byte
		for i := 0; i < chunks; i++ {
			c, ok, err := st.Get(chunkKey(i))
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("%w: snapshot chunk %d of %d is missing", errCorrupt, i, chunks)
			}
			data = append(data, c...)
		}
		if err := m.decode(data); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		if m.seq != seq {
			return nil, fmt.Errorf("%w: snapshot says seq %d, its meta %d", errCorrupt, m.seq, seq)
		}
		m.snapSeq = seq
	}
	// Replay the log after the snapshot.
	type entry struct {
		seq  int64
		data []byte
	}
	var log []entry
	it, err := st.NewIter([]byte(logPrefix), []byte(logEnd))
	if err != nil {
		return nil, err
	}
	for ; it.Valid(); it.Next() {
		v := it.Value()
		if len(v) < 8 {
			it.Close()
			return nil, errCorrupt
		}
		if seq := int64(binary.BigEndian.Uint64(v)); seq >= m.seq {
			log = append(log, entry{seq, append([]byte(nil), v...)})
		}
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	sort.Slice(log, func(i, j int) bool { return log[i].seq < log[j].seq })
	r := o.layout.newRaw()
	var pre []float64
	var vec online.Vector
	var c taskCounts
	scores := make([]float64, len(o.spec.Models))
	probBuf := make([]float64, o.nprobs)
	for _, e := range log {
		if e.seq != m.seq {
			return nil, fmt.Errorf("%w: the learning log jumps from %d to %d", errCorrupt, m.seq, e.seq)
		}
		b := e.data[8:]
		if len(b) < 8 {
			return nil, errCorrupt
		}
		y := math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
		n, k := binary.Uvarint(b)
		if k <= 0 || n != uint64(len(scores)) || len(b)-k < int(n)*8 {
			return nil, errCorrupt
		}
		b = b[k:]
		for i := range scores {
			scores[i] = math.Float64frombits(binary.LittleEndian.Uint64(b))
			b = b[8:]
		}
		if b, err = r.decode(b); err != nil {
			return nil, err
		}
		probs := probBuf
		switch len(b) {
		case 8 * len(probs):
			for i := range probs {
				probs[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
			}
		case 0:
			probs = nil
		default:
			return nil, fmt.Errorf("%w: a learning log entry has %d bytes of probabilities", errCorrupt, len(b))
		}
		_ = m.learnExample(o, &r, y, scores, probs, &pre, &vec, &c)
	}
	return m, nil
}

// appendScaler and decodeScaler frame the scaler's state (absent when there is no scaler).
func appendScaler(dst []byte, s *scaler) []byte {
	if s == nil {
		return appendBlob(dst, nil)
	}
	return appendBlob(dst, s.AppendState(nil))
}

func decodeScaler(b []byte, s *scaler) ([]byte, error) {
	blob, rest, err := readBlob(b)
	if err != nil {
		return nil, err
	}
	if s == nil {
		if len(blob) != 0 {
			return nil, errCorrupt
		}
		return rest, nil
	}
	return rest, s.DecodeState(blob)
}

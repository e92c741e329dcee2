package metrics

import (
	"errors"
	"fmt"
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// MaxWindow bounds the rolling window so that one metric's memory stays
// bounded (8 bytes per example).
const MaxWindow = 1 << 20

// ErrCorrupt is wrapped by every DecodeState error.
var ErrCorrupt = wire.ErrCorrupt

// ErrWindow is returned by constructors for a window out of [0, MaxWindow].
var ErrWindow = errors.New("metrics: window out of range")

func checkWindow(w int) error {
	if w < 0 || w > MaxWindow {
		return fmt.Errorf("%w: %d, want in [0, %d]", ErrWindow, w, MaxWindow)
	}
	return nil
}

// mean is a cumulative and rolling mean of per-example values.
type mean struct {
	n   int64
	sum float64
	// Rolling window: ring holds the last min(n, len(ring)) values, pos is
	// where the next goes, wsum their sum, fresh the updates since wsum was
	// recomputed.
	ring  []float64
	pos   int
	wn    int
	wsum  float64
	fresh int
}

func newMean(window int) mean { return mean{ring: make([]float64, window)} }

func (m *mean) add(v float64) {
	m.n++
	m.sum += v
	if len(m.ring) == 0 {
		return
	}
	if m.wn == len(m.ring) {
		m.wsum -= m.ring[m.pos]
	} else {
		m.wn++
	}
	m.ring[m.pos] = v
	m.wsum += v
	m.pos++
	if m.pos == len(m.ring) {
		m.pos = 0
	}
	m.fresh++
	if m.fresh >= len(m.ring) {
		m.fresh = 0
		s := 0.0
		for i := 0; i < m.wn; i++ {
			s += m.ring[i]
		}
		m.wsum = s
	}
}

func (m *mean) value() float64 {
	if m.n == 0 {
		return math.NaN()
	}
	return m.sum / float64(m.n)
}

func (m *mean) window() float64 {
	if len(m.ring) == 0 {
		return m.value()
	}
	if m.wn == 0 {
		return math.NaN()
	}
	return m.wsum / float64(m.wn)
}

func (m *mean) reset() {
	clear(m.ring)
	*m = mean{ring: m.ring}
}

func (m *mean) appendState(dst []byte) []byte {
	dst = wire.AppendVarint(dst, m.n)
	dst = wire.AppendFloat(dst, m.sum)
	dst = wire.AppendUvarint(dst, uint64(len(m.ring)))
	dst = wire.AppendUvarint(dst, uint64(m.pos))
	dst = wire.AppendUvarint(dst, uint64(m.wn))
	dst = wire.AppendFloat(dst, m.wsum)
	dst = wire.AppendUvarint(dst, uint64(m.fresh))
	// Only the filled part of the ring: a young metric's state is small.
	for i := 0; i < m.wn; i++ {
		dst = wire.AppendFloat(dst, m.ring[i])
	}
	return dst
}

func readMean(r *wire.Reader) mean {
	var m mean
	m.n = r.Int("n", 0, math.MaxInt64)
	m.sum = r.Finite("sum")
	size := r.Count("window", MaxWindow, 0)
	m.pos = r.Count("pos", max(size-1, 0), 0)
	m.wn = r.Count("filled", size, 8)
	m.wsum = r.Finite("window sum")
	m.fresh = r.Count("fresh", max(size-1, 0), 0)
	if r.Err() != nil {
		return mean{}
	}
	if m.wn < size && m.pos != m.wn {
		r.Fail("ring position %d with %d of %d filled", m.pos, m.wn, size)
		return mean{}
	}
	if int64(m.wn) > m.n {
		r.Fail("window holds %d of %d examples", m.wn, m.n)
		return mean{}
	}
	m.ring = make([]float64, size)
	for i := 0; i < m.wn; i++ {
		m.ring[i] = r.Finite("ring")
	}
	return m
}

// decode runs read over b after checking the header, and assigns only if
// everything was valid.
func decode(b []byte, magic byte, name string, read func(r *wire.Reader)) error {
	r := wire.NewReader(b)
	if v := r.Header(magic, name); r.Err() == nil && v != 1 {
		r.Fail("%s: version %d", name, v)
	}
	if r.Err() != nil {
		return r.Err()
	}
	read(r)
	return r.End(name)
}

// LogLoss is the mean negative log-likelihood of the true class, with
// probabilities clipped to [1e-15, 1-1e-15] as scikit-learn and River do, so
// that one confident mistake costs about 34.5 instead of infinity.
type LogLoss struct{ m mean }

// NewLogLoss returns a log loss with a rolling window of the last window
// examples (0: no window; Window then equals Value).
func NewLogLoss(window int) (*LogLoss, error) {
	if err := checkWindow(window); err != nil {
		return nil, err
	}
	return &LogLoss{newMean(window)}, nil
}

const eps = 1e-15

// Update adds a binary example: p = P(y=1) as predicted, y in {0, 1}.
func (l *LogLoss) Update(p float64, y float64) {
	if y >= 0.5 {
		l.UpdateTrue(p)
	} else {
		l.UpdateTrue(1 - p)
	}
}

// UpdateTrue adds an example given the probability predicted for its true
// class (multiclass). NaN counts as the worst clipped value.
func (l *LogLoss) UpdateTrue(p float64) {
	if math.IsNaN(p) {
		p = 0
	}
	l.m.add(-math.Log(min(max(p, eps), 1-eps)))
}

func (l *LogLoss) Value() float64  { return l.m.value() }
func (l *LogLoss) Window() float64 { return l.m.window() }
func (l *LogLoss) Count() int64    { return l.m.n }
func (l *LogLoss) Reset()          { l.m.reset() }

func (l *LogLoss) AppendState(dst []byte) []byte {
	return l.m.appendState(wire.AppendHeader(dst, 'l', 1))
}

func (l *LogLoss) DecodeState(b []byte) error {
	var m mean
	if err := decode(b, 'l', "logloss", func(r *wire.Reader) { m = readMean(r) }); err != nil {
		return err
	}
	l.m = m
	return nil
}

// Accuracy is the fraction of examples whose predicted class was right.
type Accuracy struct{ m mean }

func NewAccuracy(window int) (*Accuracy, error) {
	if err := checkWindow(window); err != nil {
		return nil, err
	}
	return &Accuracy{newMean(window)}, nil
}

// Update adds an example with its predicted and true class.
func (a *Accuracy) Update(pred, y int) {
	if pred == y {
		a.m.add(1)
	} else {
		a.m.add(0)
	}
}

func (a *Accuracy) Value() float64  { return a.m.value() }
func (a *Accuracy) Window() float64 { return a.m.window() }
func (a *Accuracy) Count() int64    { return a.m.n }
func (a *Accuracy) Reset()          { a.m.reset() }

func (a *Accuracy) AppendState(dst []byte) []byte {
	return a.m.appendState(wire.AppendHeader(dst, 'a', 1))
}

func (a *Accuracy) DecodeState(b []byte) error {
	var m mean
	if err := decode(b, 'a', "accuracy", func(r *wire.Reader) { m = readMean(r) }); err != nil {
		return err
	}
	a.m = m
	return nil
}

// MAE is the mean absolute error of a regression.
type MAE struct{ m mean }

func NewMAE(window int) (*MAE, error) {
	if err := checkWindow(window); err != nil {
		return nil, err
	}
	return &MAE{newMean(window)}, nil
}

// Update adds a prediction and its target; non-finite pairs are ignored so
// that one bad label cannot make the metric NaN for ever.
func (e *MAE) Update(pred, y float64) {
	d := math.Abs(pred - y)
	if math.IsNaN(d) || math.IsInf(d, 0) {
		return
	}
	e.m.add(d)
}

func (e *MAE) Value() float64  { return e.m.value() }
func (e *MAE) Window() float64 { return e.m.window() }
func (e *MAE) Count() int64    { return e.m.n }
func (e *MAE) Reset()          { e.m.reset() }

func (e *MAE) AppendState(dst []byte) []byte {
	return e.m.appendState(wire.AppendHeader(dst, 'm', 1))
}

func (e *MAE) DecodeState(b []byte) error {
	var m mean
	if err := decode(b, 'm', "mae", func(r *wire.Reader) { m = readMean(r) }); err != nil {
		return err
	}
	e.m = m
	return nil
}

// RMSE is the root mean squared error of a regression.
type RMSE struct{ m mean }

func NewRMSE(window int) (*RMSE, error) {
	if err := checkWindow(window); err != nil {
		return nil, err
	}
	return &RMSE{newMean(window)}, nil
}

// Update adds a prediction and its target; non-finite pairs are ignored.
func (e *RMSE) Update(pred, y float64) {
	d := (pred - y) * (pred - y)
	if math.IsNaN(d) || math.IsInf(d, 0) {
		return
	}
	e.m.add(d)
}

func (e *RMSE) Value() float64  { return math.Sqrt(e.m.value()) }
func (e *RMSE) Window() float64 { return math.Sqrt(max(e.m.window(), 0)) }
func (e *RMSE) Count() int64    { return e.m.n }
func (e *RMSE) Reset()          { e.m.reset() }

func (e *RMSE) AppendState(dst []byte) []byte {
	return e.m.appendState(wire.AppendHeader(dst, 'r', 1))
}

func (e *RMSE) DecodeState(b []byte) error {
	var m mean
	if err := decode(b, 'r', "rmse", func(r *wire.Reader) { m = readMean(r) }); err != nil {
		return err
	}
	e.m = m
	return nil
}

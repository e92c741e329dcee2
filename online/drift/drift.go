package drift

import (
	"errors"
	"fmt"
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// Direction says which changes of the mean a detector reports.
type Direction uint8

const (
	// Both reports increases and decreases. It is the zero value.
	Both Direction = iota
	// Up reports only increases: use it on losses.
	Up
	// Down reports only decreases: use it on accuracies.
	Down
)

var (
	// ErrInvalidConfig is wrapped by every configuration error.
	ErrInvalidConfig = errors.New("drift: invalid config")
	// ErrCorrupt is wrapped by every DecodeState error.
	ErrCorrupt = wire.ErrCorrupt
)

func validDir(d Direction) bool { return d <= Down }

func (d Direction) reports(increase bool) bool {
	switch d {
	case Up:
		return increase
	case Down:
		return !increase
	}
	return true
}

// ADWINConfig configures ADWIN; zero fields take River's defaults.
type ADWINConfig struct {
	// Delta is the confidence of a cut (default 0.002): smaller means fewer
	// false alarms and later detections.
	Delta float64 `yaml:"delta"`
	// Clock is how often, in updates, cuts are checked (default 32).
	Clock int `yaml:"clock"`
	// MaxBuckets is the number of buckets of each size kept (default 5):
	// more buckets mean finer cut points and more memory.
	MaxBuckets int `yaml:"max_buckets"`
	// MinWindow is the smallest sub-window a cut may leave (default 5).
	MinWindow int `yaml:"min_window"`
	// GracePeriod is the number of values before the first check
	// (default 10).
	GracePeriod int       `yaml:"grace_period"`
	Direction   Direction `yaml:"direction"`
}

func (c *ADWINConfig) EnsureDefaults() {
	if c.Delta == 0 {
		c.Delta = 0.002
	}
	if c.Clock == 0 {
		c.Clock = 32
	}
	if c.MaxBuckets == 0 {
		c.MaxBuckets = 5
	}
	if c.MinWindow == 0 {
		c.MinWindow = 5
	}
	if c.GracePeriod == 0 {
		c.GracePeriod = 10
	}
}

// Validate names every bad field.
func (c ADWINConfig) Validate() error {
	var errs []error
	bad := func(f string, v any, want string) {
		errs = append(errs, fmt.Errorf("%w: adwin.%s = %v, want %s", ErrInvalidConfig, f, v, want))
	}
	if !(c.Delta > 0 && c.Delta < 1) {
		bad("delta", c.Delta, "in (0, 1)")
	}
	if c.Clock < 1 || c.Clock > 1<<20 {
		bad("clock", c.Clock, "in [1, 1048576]")
	}
	if c.MaxBuckets < 2 || c.MaxBuckets > 64 {
		bad("max_buckets", c.MaxBuckets, "in [2, 64]")
	}
	if c.MinWindow < 1 || c.MinWindow > 1<<20 {
		bad("min_window", c.MinWindow, "in [1, 1048576]")
	}
	if c.GracePeriod < 0 || c.GracePeriod > 1<<30 {
		bad("grace_period", c.GracePeriod, "in [0, 2^30]")
	}
	if !validDir(c.Direction) {
		bad("direction", c.Direction, "Both, Up or Down")
	}
	return errors.Join(errs...)
}

// ADWIN is the ADWIN2 change detector. Memory is O(MaxBuckets × log W)
// for a window of W values.
type ADWIN struct {
	cfg ADWINConfig
	// rows[i] holds the buckets of 2^i values, oldest first: their sums and
	// their variances times count (M2).
	rows       []row
	width      int64
	total      float64
	m2         float64 // sum of squared deviations of the whole window
	tick       int64
	detections int64
	// last is the cut of the last detection (not state: for reporting it).
	last ADWINCut
}

// ADWINCut is a cut ADWIN made at a detection: the older sub-window it dropped and the newer
// one it kept, their sizes and means.
type ADWINCut struct {
	OldValues, NewValues int64
	OldMean, NewMean     float64
}

// LastCut returns the cut of the last detection reported by Update (the zero value before any, and
// after DecodeState).
func (a *ADWIN) LastCut() ADWINCut { return a.last }

type row struct {
	sum, m2 []float64
}

const maxRows = 62 // 2^62 values: more than any stream

// NewADWIN returns a detector; cfg's zero fields take defaults.
func NewADWIN(cfg ADWINConfig) (*ADWIN, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &ADWIN{cfg: cfg}, nil
}

// Config returns the configuration, defaults applied.
func (a *ADWIN) Config() ADWINConfig { return a.cfg }

// Width is the number of values in the window.
func (a *ADWIN) Width() int64 { return a.width }

// Mean is the mean of the window (NaN when empty).
func (a *ADWIN) Mean() float64 {
	if a.width == 0 {
		return math.NaN()
	}
	return a.total / float64(a.width)
}

// Detections counts the drifts reported since the last Reset.
func (a *ADWIN) Detections() int64 { return a.detections }

// Reset empties the window.
func (a *ADWIN) Reset() { *a = ADWIN{cfg: a.cfg, rows: a.rows[:0]} }

// Update adds x and reports whether a change (in the configured direction)
// was detected. Non-finite values are ignored.
func (a *ADWIN) Update(x float64) bool {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return false
	}
	if a.width > 0 {
		d := x - a.total/float64(a.width)
		a.m2 += float64(a.width) * d * d / float64(a.width+1)
	}
	a.width++
	a.total += x
	a.insert(0, x, 0)
	a.compress()
	a.tick++
	if a.tick%int64(a.cfg.Clock) != 0 || a.width <= int64(a.cfg.GracePeriod) {
		return false
	}
	return a.detect()
}

func (a *ADWIN) insert(i int, sum, m2 float64) {
	for len(a.rows) <= i {
		a.growRow()
	}
	a.rows[i].sum = append(a.rows[i].sum, sum)
	a.rows[i].m2 = append(a.rows[i].m2, m2)
}

// rowChunk is how many rows growRow prepares at once.
const rowChunk = 8

// growRow appends an empty row. Rows are prepared rowChunk at a time, their buckets in one array,
// and a Reset keeps them: a window that keeps growing allocates once per rowChunk doublings of
// its width (a forest's detectors on a stationary stream), not at every doubling.
func (a *ADWIN) growRow() {
	n := len(a.rows)
	if n == cap(a.rows) {
		rows := make([]row, n, n+rowChunk)
		copy(rows, a.rows)
		a.rows = rows
		b := a.cfg.MaxBuckets + 1
		slab := make([]float64, 2*b*rowChunk)
		all := a.rows[:cap(a.rows)]
		for j := n; j < len(all); j++ {
			o := 2 * b * (j - n)
			all[j] = row{sum: slab[o : o : o+b], m2: slab[o+b : o+b : o+2*b]}
		}
	}
	a.rows = a.rows[:n+1]
	r := &a.rows[n]
	r.sum, r.m2 = r.sum[:0], r.m2[:0]
}

// compress merges the two oldest buckets of a row that has too many into
// one bucket of the next row.
func (a *ADWIN) compress() {
	for i := 0; i < len(a.rows) && i < maxRows; i++ {
		r := &a.rows[i]
		if len(r.sum) <= a.cfg.MaxBuckets {
			break
		}
		n := float64(int64(1) << i)
		s1, s2 := r.sum[0], r.sum[1]
		d := s1/n - s2/n
		m2 := r.m2[0] + r.m2[1] + n*n*d*d/(2*n)
		copy(r.sum, r.sum[2:])
		copy(r.m2, r.m2[2:])
		r.sum = r.sum[:len(r.sum)-2]
		r.m2 = r.m2[:len(r.m2)-2]
		a.insert(i+1, s1+s2, m2)
	}
}

// dropOldest removes the oldest bucket and returns its size.
func (a *ADWIN) dropOldest() int64 {
	i := len(a.rows) - 1
	r := &a.rows[i]
	n := int64(1) << i
	s, m2 := r.sum[0], r.m2[0]
	a.width -= n
	a.total -= s
	if a.width > 0 {
		d := s/float64(n) - a.total/float64(a.width)
		a.m2 -= m2 + float64(n)*float64(a.width)*d*d/float64(n+a.width)
		a.m2 = max(a.m2, 0)
	} else {
		a.total, a.m2 = 0, 0
	}
	copy(r.sum, r.sum[1:])
	copy(r.m2, r.m2[1:])
	r.sum = r.sum[:len(r.sum)-1]
	r.m2 = r.m2[:len(r.m2)-1]
	if len(r.sum) == 0 {
		a.rows = a.rows[:i]
	}
	return n
}

// detect scans the cut points from the oldest bucket to the newest and
// drops the old part while a cut separates two different means.
func (a *ADWIN) detect() bool {
	detected := false
	for again := true; again && a.width > 0; {
		again = false
		var n0 int64
		var u0 float64
		n1, u1 := a.width, a.total
		variance := a.m2 / float64(a.width)
		minW := int64(a.cfg.MinWindow)
	scan:
		for i := len(a.rows) - 1; i >= 0; i-- {
			r := a.rows[i]
			n := int64(1) << i
			for k := range r.sum {
				if i == 0 && k == len(r.sum)-1 {
					break scan // no cut after the newest value
				}
				n0 += n
				n1 -= n
				u0 += r.sum[k]
				u1 -= r.sum[k]
				if n0 < minW || n1 < minW {
					continue
				}
				diff := u1/float64(n1) - u0/float64(n0)
				if a.cut(n0, n1, math.Abs(diff), variance) {
					a.dropOldest()
					again = true
					if a.cfg.Direction.reports(diff > 0) {
						if !detected {
							a.last = ADWINCut{OldValues: n0, NewValues: n1, OldMean: u0 / float64(n0), NewMean: u1 / float64(n1)}
						}
						detected = true
					}
					break scan
				}
			}
		}
	}
	if detected {
		a.detections++
	}
	return detected
}

// cut is ADWIN2's test, with the finite-sample correction River and MOA
// use: m = harmonic mean of the sub-window sizes less MinWindow, and the
// confidence split over log(width) cut points.
func (a *ADWIN) cut(n0, n1 int64, diff, variance float64) bool {
	minW := float64(a.cfg.MinWindow)
	dd := math.Log(2 * math.Log(float64(a.width)) / a.cfg.Delta)
	mRecip := 1/(float64(n0)-minW+1) + 1/(float64(n1)-minW+1)
	eps := math.Sqrt(2*mRecip*variance*dd) + 2.0/3.0*dd*mRecip
	return diff >= eps
}

func appendDir(dst []byte, d Direction) []byte { return append(dst, byte(d)) }

// AppendState writes the configuration and the buckets.
func (a *ADWIN) AppendState(dst []byte) []byte {
	c := a.cfg
	dst = wire.AppendHeader(dst, 'A', 1)
	dst = wire.AppendFloat(dst, c.Delta)
	for _, v := range [...]int{c.Clock, c.MaxBuckets, c.MinWindow, c.GracePeriod} {
		dst = wire.AppendVarint(dst, int64(v))
	}
	dst = appendDir(dst, c.Direction)
	dst = wire.AppendVarint(dst, a.width)
	dst = wire.AppendFloat(dst, a.total)
	dst = wire.AppendFloat(dst, a.m2)
	dst = wire.AppendVarint(dst, a.tick)
	dst = wire.AppendVarint(dst, a.detections)
	dst = wire.AppendUvarint(dst, uint64(len(a.rows)))
	for _, r := range a.rows {
		dst = wire.AppendUvarint(dst, uint64(len(r.sum)))
		for k := range r.sum {
			dst = wire.AppendFloat(dst, r.sum[k])
			dst = wire.AppendFloat(dst, r.m2[k])
		}
	}
	return dst
}

// DecodeState replaces the detector with b; on error it is unchanged.
func (a *ADWIN) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	if v := r.Header('A', "adwin"); r.Err() == nil && v != 1 {
		r.Fail("adwin: version %d", v)
	}
	var d ADWIN
	c := &d.cfg
	c.Delta = r.Float()
	for _, v := range [...]*int{&c.Clock, &c.MaxBuckets, &c.MinWindow, &c.GracePeriod} {
		*v = int(r.Int("adwin config", 0, 1<<30))
	}
	if raw := r.Raw(1); raw != nil {
		c.Direction = Direction(raw[0])
	}
	if r.Err() != nil {
		return r.Err()
	}
	if err := c.Validate(); err != nil {
		r.Fail("adwin: %v", err)
		return r.Err()
	}
	d.width = r.Int("adwin width", 0, math.MaxInt64/2)
	d.total = r.Finite("adwin total")
	d.m2 = r.NonNeg("adwin m2")
	d.tick = r.Int("adwin tick", 0, math.MaxInt64/2)
	d.detections = r.Int("adwin detections", 0, math.MaxInt64/2)
	nrows := r.Count("adwin rows", maxRows, 1)
	var width int64
	for i := 0; i < nrows && r.Err() == nil; i++ {
		n := r.Count("adwin buckets", c.MaxBuckets, 16)
		if r.Err() == nil && n == 0 {
			r.Fail("adwin: empty row %d", i)
		}
		d.insert(i, 0, 0)
		d.rows[i].sum, d.rows[i].m2 = d.rows[i].sum[:0], d.rows[i].m2[:0]
		for k := 0; k < n && r.Err() == nil; k++ {
			d.rows[i].sum = append(d.rows[i].sum, r.Finite("adwin sum"))
			d.rows[i].m2 = append(d.rows[i].m2, r.NonNeg("adwin m2"))
			width += int64(1) << i
		}
	}
	if err := r.End("adwin"); err != nil {
		return err
	}
	if width != d.width {
		r.Fail("adwin: buckets hold %d values, width %d", width, d.width)
		return r.Err()
	}
	*a = d
	return nil
}

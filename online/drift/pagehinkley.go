package drift

import (
	"errors"
	"fmt"
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// PageHinkleyConfig configures the Page-Hinkley test. Zero fields take
// River's defaults, which suit inputs of order 1 (a log loss); Threshold and
// Delta are in the input's units and must be scaled with it.
type PageHinkleyConfig struct {
	// MinInstances is the number of values before any detection (default 30).
	MinInstances int `yaml:"min_instances"`
	// Delta is the magnitude of change tolerated (default 0.005).
	Delta float64 `yaml:"delta"`
	// Threshold (lambda) is the cumulative deviation that signals a change
	// (default 50).
	Threshold float64 `yaml:"threshold"`
	// Alpha is the forgetting factor of the cumulative sums (default
	// 1-1e-4); 1 means none.
	Alpha     float64   `yaml:"alpha"`
	Direction Direction `yaml:"direction"`
}

func (c *PageHinkleyConfig) EnsureDefaults() {
	if c.MinInstances == 0 {
		c.MinInstances = 30
	}
	if c.Delta == 0 {
		c.Delta = 0.005
	}
	if c.Threshold == 0 {
		c.Threshold = 50
	}
	if c.Alpha == 0 {
		c.Alpha = 1 - 1e-4
	}
}

// Validate names every bad field.
func (c PageHinkleyConfig) Validate() error {
	var errs []error
	bad := func(f string, v any, want string) {
		errs = append(errs, fmt.Errorf("%w: page_hinkley.%s = %v, want %s", ErrInvalidConfig, f, v, want))
	}
	if c.MinInstances < 1 || c.MinInstances > 1<<30 {
		bad("min_instances", c.MinInstances, "in [1, 2^30]")
	}
	if !(c.Delta >= 0) || math.IsInf(c.Delta, 0) {
		bad("delta", c.Delta, ">= 0 and finite")
	}
	if !(c.Threshold > 0) || math.IsInf(c.Threshold, 0) {
		bad("threshold", c.Threshold, "> 0 and finite")
	}
	if !(c.Alpha > 0 && c.Alpha <= 1) {
		bad("alpha", c.Alpha, "in (0, 1]")
	}
	if !validDir(c.Direction) {
		bad("direction", c.Direction, "Both, Up or Down")
	}
	return errors.Join(errs...)
}

// PageHinkley is the Page-Hinkley CUSUM test, as in River: it accumulates
// the deviation of each value from the running mean (less Delta), and
// reports a change when the accumulation rises Threshold above its minimum
// (an increase) or falls Threshold below its maximum (a decrease). After a
// detection it starts over.
type PageHinkley struct {
	cfg        PageHinkleyConfig
	n          int64
	mean       float64
	sumUp      float64
	sumDown    float64
	minUp      float64
	maxDown    float64
	detections int64
	// last is the test as it stood at the last detection (not state: for reporting it).
	last PHDetection
}

// NewPageHinkley returns a detector; cfg's zero fields take defaults.
func NewPageHinkley(cfg PageHinkleyConfig) (*PageHinkley, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &PageHinkley{cfg: cfg}
	p.Reset()
	return p, nil
}

// Reset starts over (the detection count is kept).
func (p *PageHinkley) Reset() {
	p.n, p.mean, p.sumUp, p.sumDown = 0, 0, 0, 0
	p.minUp, p.maxDown = math.MaxFloat64, -math.MaxFloat64
}

// Config returns the configuration, defaults applied.
func (p *PageHinkley) Config() PageHinkleyConfig { return p.cfg }

// Detections counts the changes reported.
func (p *PageHinkley) Detections() int64 { return p.detections }

// Update adds x and reports whether a change was detected. Non-finite
// values are ignored.
func (p *PageHinkley) Update(x float64) bool {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return false
	}
	p.n++
	p.mean += (x - p.mean) / float64(p.n)
	dev := x - p.mean
	p.sumUp = p.cfg.Alpha*p.sumUp + dev - p.cfg.Delta
	p.sumDown = p.cfg.Alpha*p.sumDown + dev + p.cfg.Delta
	p.minUp = min(p.minUp, p.sumUp)
	p.maxDown = max(p.maxDown, p.sumDown)
	if p.n < int64(p.cfg.MinInstances) {
		return false
	}
	up := p.sumUp-p.minUp > p.cfg.Threshold
	down := p.maxDown-p.sumDown > p.cfg.Threshold
	var hit bool
	switch p.cfg.Direction {
	case Up:
		hit = up
	case Down:
		hit = down
	default:
		hit = up || down
	}
	if hit {
		p.detections++
		p.last = PHDetection{Values: p.n, Mean: p.mean, Up: p.sumUp - p.minUp, Down: p.maxDown - p.sumDown}
		p.Reset()
	}
	return hit
}

// PHDetection is the Page-Hinkley test at a detection: the values since it last started, their
// mean, and the two statistics compared with Threshold (the rise of the cumulative deviation above
// its minimum, and its fall below its maximum).
type PHDetection struct {
	Values         int64
	Mean, Up, Down float64
}

// LastDetection returns the test as it stood at the last detection reported by Update (the zero
// value before any, and after DecodeState).
func (p *PageHinkley) LastDetection() PHDetection { return p.last }

func (p *PageHinkley) AppendState(dst []byte) []byte {
	c := p.cfg
	dst = wire.AppendHeader(dst, 'H', 1)
	dst = wire.AppendVarint(dst, int64(c.MinInstances))
	dst = wire.AppendFloat(dst, c.Delta)
	dst = wire.AppendFloat(dst, c.Threshold)
	dst = wire.AppendFloat(dst, c.Alpha)
	dst = appendDir(dst, c.Direction)
	dst = wire.AppendVarint(dst, p.n)
	for _, v := range [...]float64{p.mean, p.sumUp, p.sumDown, p.minUp, p.maxDown} {
		dst = wire.AppendFloat(dst, v)
	}
	return wire.AppendVarint(dst, p.detections)
}

// DecodeState replaces the detector with b; on error it is unchanged.
func (p *PageHinkley) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	if v := r.Header('H', "page_hinkley"); r.Err() == nil && v != 1 {
		r.Fail("page_hinkley: version %d", v)
	}
	var d PageHinkley
	c := &d.cfg
	c.MinInstances = int(r.Int("min_instances", 0, 1<<30))
	c.Delta, c.Threshold, c.Alpha = r.Float(), r.Float(), r.Float()
	if raw := r.Raw(1); raw != nil {
		c.Direction = Direction(raw[0])
	}
	if r.Err() == nil {
		if err := c.Validate(); err != nil {
			r.Fail("page_hinkley: %v", err)
		}
	}
	d.n = r.Int("n", 0, math.MaxInt64/2)
	for _, v := range [...]*float64{&d.mean, &d.sumUp, &d.sumDown, &d.minUp, &d.maxDown} {
		*v = r.Finite("page_hinkley sum")
	}
	d.detections = r.Int("detections", 0, math.MaxInt64/2)
	if err := r.End("page_hinkley"); err != nil {
		return err
	}
	*p = d
	return nil
}

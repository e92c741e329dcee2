package gen

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults and bounds of Config. A zero field takes its default (SetDefaults); the bounds are what
// Validate accepts.
const (
	DefaultSeed       = 1
	DefaultKeys       = 10000
	DefaultZipfS      = 1.1
	DefaultOutOfOrder = 2 * time.Second
	DefaultFraudRate  = 0.02
	DefaultLabelRatio = 1.0
	DefaultLabelDelay = 5 * time.Second
	DefaultHugeBytes  = 128 << 10

	// MaxKeys keeps card ids at their fixed width: "card-000000" .. "card-999999".
	MaxKeys       = 1_000_000
	MaxZipfS      = 10.0
	MaxOutOfOrder = time.Hour
	MaxLabelDelay = 30 * 24 * time.Hour
	MinHugeBytes  = 1 << 10
	MaxHugeBytes  = 16 << 20
)

// Config configures a Generator.
//
// A zero field means its default (see SetDefaults). For the four fields whose zero is a meaningful
// setting different from the default, a negative value selects zero:
//
//   - OutOfOrder < 0: event times are exactly now (truncated to the millisecond), in order;
//   - LabelDelay < 0: a label is due at its event's time;
//   - FraudRate < 0: no fraud at all (and no compromised-card bursts);
//   - LabelRatio < 0: no event is ever labelled.
type Config struct {
	Seed  int64   // default 1; 0 means 1
	Keys  int     // distinct cards, default 10000, at most MaxKeys
	ZipfS float64 // key skew, the s of math/rand/v2's Zipf (must be > 1), default 1.1: a few cards are hot

	// OutOfOrder: a record's event time is now - uniform[0, OutOfOrder), in whole milliseconds.
	// Default 2s.
	OutOfOrder time.Duration

	BadRatio float64 // fraction [0,1] of deliberately broken records, default 0
	// BadKinds restricts the broken records to these kinds (each drawn equally often); nil or empty
	// means every kind.
	BadKinds []BadKind

	FraudRate  float64       // approximate overall fraud base rate, default 0.02
	LabelRatio float64       // fraction of valid events that ever get a label, default 1
	LabelDelay time.Duration // a label is due this long (event-time clock) after its event, default 5s

	// DriftAt > 0: from the DriftAt-th record on (0-based sequence number >= DriftAt, counting every
	// record, bad ones too) the fraud pattern flips abruptly; see the package doc.
	DriftAt int64

	HugeBytes int // size of the Huge bad record kind, default 128 KiB
}

// SetDefaults replaces zero fields by their defaults. It is idempotent and does not validate.
func (c *Config) SetDefaults() {
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.Keys == 0 {
		c.Keys = DefaultKeys
	}
	if c.ZipfS == 0 {
		c.ZipfS = DefaultZipfS
	}
	if c.OutOfOrder == 0 {
		c.OutOfOrder = DefaultOutOfOrder
	}
	if c.FraudRate == 0 {
		c.FraudRate = DefaultFraudRate
	}
	if c.LabelRatio == 0 {
		c.LabelRatio = DefaultLabelRatio
	}
	if c.LabelDelay == 0 {
		c.LabelDelay = DefaultLabelDelay
	}
	if c.HugeBytes == 0 {
		c.HugeBytes = DefaultHugeBytes
	}
}

// Validate reports every field out of bounds, each error naming the field, its value and the bound.
// Zero fields are valid (they mean the default), so Validate may be called before or after SetDefaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, rule string) {
		errs = append(errs, fmt.Errorf("gen: Config.%s = %v: %s", field, value, rule))
	}
	if c.Keys < 0 || c.Keys > MaxKeys {
		bad("Keys", c.Keys, fmt.Sprintf("must be in [1, %d] (0 = default %d)", MaxKeys, DefaultKeys))
	}
	if c.ZipfS != 0 && !(c.ZipfS > 1 && c.ZipfS <= MaxZipfS) { // also rejects NaN
		bad("ZipfS", c.ZipfS, fmt.Sprintf("must be in (1, %g] (0 = default %g)", MaxZipfS, DefaultZipfS))
	}
	if c.OutOfOrder > MaxOutOfOrder {
		bad("OutOfOrder", c.OutOfOrder, fmt.Sprintf("must be at most %v (0 = default %v, negative = in order)", MaxOutOfOrder, DefaultOutOfOrder))
	}
	if !(c.BadRatio >= 0 && c.BadRatio <= 1) {
		bad("BadRatio", c.BadRatio, "must be in [0, 1]")
	}
	for i, k := range c.BadKinds {
		if k == NotBad || k >= numBadKinds {
			bad(fmt.Sprintf("BadKinds[%d]", i), k, fmt.Sprintf("must be a bad kind in [%d, %d]", MalformedJSON, numBadKinds-1))
		}
	}
	if math.IsNaN(c.FraudRate) || c.FraudRate > 1 {
		bad("FraudRate", c.FraudRate, fmt.Sprintf("must be at most 1 (0 = default %g, negative = no fraud)", DefaultFraudRate))
	}
	if math.IsNaN(c.LabelRatio) || c.LabelRatio > 1 {
		bad("LabelRatio", c.LabelRatio, fmt.Sprintf("must be at most 1 (0 = default %g, negative = no labels)", DefaultLabelRatio))
	}
	if c.LabelDelay > MaxLabelDelay {
		bad("LabelDelay", c.LabelDelay, fmt.Sprintf("must be at most %v (0 = default %v, negative = due at the event time)", MaxLabelDelay, DefaultLabelDelay))
	}
	if c.DriftAt < 0 {
		bad("DriftAt", c.DriftAt, "must be >= 0 (0 = no drift)")
	}
	if c.HugeBytes != 0 && (c.HugeBytes < MinHugeBytes || c.HugeBytes > MaxHugeBytes) {
		bad("HugeBytes", c.HugeBytes, fmt.Sprintf("must be in [%d, %d] (0 = default %d)", MinHugeBytes, MaxHugeBytes, DefaultHugeBytes))
	}
	return errors.Join(errs...)
}

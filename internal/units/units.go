// Package units parses the quantities people write in configs and flags: durations ("100ms", "1h30m",
// "7d"), byte sizes ("1MiB", "512KB", "1048576") and rates ("5000/s", "2.5k/s", "300/min").
//
// Durations follow Go's time.ParseDuration, which Go users know, plus the day suffix "d" (24h) and week
// suffix "w" that retention-style settings need (Kafka users write retention in days). Sizes accept the
// IEC binary suffixes KiB/MiB/GiB/TiB (powers of 1024, as Kafka's byte settings are) and the SI ones
// KB/MB/GB/TB (powers of 1000), with an optional B, and a plain integer is bytes. A rate is a count
// (with an optional k/M multiplier) per second, minute or hour.
package units

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a Go duration, extended with "d" (24 hours) and "w" (7 days) units, which may be
// mixed with the Go units ("1d12h"). A bare "0" is zero. Negative durations are returned as parsed;
// whether they are allowed is the caller's rule.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if !strings.ContainsAny(s, "dw") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (write it like 100ms, 15s, 5m, 1h30m or 7d)", s)
		}
		return d, nil
	}
	neg := false
	rest := s
	if rest[0] == '-' || rest[0] == '+' {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] == '.' || (rest[i] >= '0' && rest[i] <= '9')) {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("%q is not a duration (write it like 100ms, 15s, 5m, 1h30m or 7d)", s)
		}
		num := rest[:i]
		rest = rest[i:]
		j := 0
		for j < len(rest) && !(rest[j] == '.' || (rest[j] >= '0' && rest[j] <= '9')) {
			j++
		}
		unit := rest[:j]
		rest = rest[j:]
		var part time.Duration
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("%q is not a duration (write it like 100ms, 15s, 5m, 1h30m or 7d)", s)
			}
			mul := 24 * time.Hour
			if unit == "w" {
				mul *= 7
			}
			v := f * float64(mul)
			// 1<<63, not MaxInt64, which rounds to 1<<63 as a float: a product of exactly 1<<63
			// would pass and convert to a negative duration.
			if v >= 1<<63 {
				return 0, fmt.Errorf("%q is too long a duration", s)
			}
			part = time.Duration(v)
		default:
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("%q is not a duration (write it like 100ms, 15s, 5m, 1h30m or 7d)", s)
			}
			part = d
		}
		if total > math.MaxInt64-part {
			return 0, fmt.Errorf("%q is too long a duration", s)
		}
		total += part
	}
	if neg {
		total = -total
	}
	return total, nil
}

// FormatDuration writes d the way ParseDuration reads it, using days where d is a whole number of them.
func FormatDuration(d time.Duration) string {
	if d != 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	// time.Duration writes 1m0s and 1h0m0s; people write 1m and 1h.
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

var sizeUnits = []struct {
	suffix string
	mul    float64
}{
	// Longest suffixes first so that "KiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"kB", 1e3}, {"K", 1e3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
	{"B", 1},
}

// ParseBytes parses a byte size: "1048576", "1MiB", "512KiB", "1.5GB". Binary suffixes (KiB, MiB, ...)
// are powers of 1024, decimal ones (KB, MB, ...) powers of 1000. The result must be a whole,
// non-negative number of bytes.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty size")
	}
	num, mul := s, 1.0
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mul = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mul
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a size (write it like 1048576, 512KiB, 1MiB or 1GB)", s)
	}
	v := f * mul
	if v < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	return int64(v), nil
}

// FormatBytes writes n with the largest binary suffix that divides it exactly.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mul == 0 {
			return strconv.FormatInt(n/u.mul, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// ParseRate parses an events-per-time rate: "5000/s", "2.5k/s", "300/min", "1M/h". A bare number is
// per second. The result is per second.
func ParseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty rate")
	}
	num, per := s, "s"
	if i := strings.IndexByte(s, '/'); i >= 0 {
		num, per = strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
	}
	mul := 1.0
	switch {
	case strings.HasSuffix(num, "k"), strings.HasSuffix(num, "K"):
		num, mul = num[:len(num)-1], 1e3
	case strings.HasSuffix(num, "M"):
		num, mul = num[:len(num)-1], 1e6
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, fmt.Errorf("%q is not a rate (write it like 5000/s, 2.5k/s or 300/min)", s)
	}
	var seconds float64
	switch per {
	case "s", "sec", "second":
		seconds = 1
	case "m", "min", "minute":
		seconds = 60
	case "h", "hour":
		seconds = 3600
	default:
		return 0, fmt.Errorf("%q has an unknown time unit %q (use /s, /min or /h)", s, per)
	}
	r := f * mul / seconds
	if math.IsInf(r, 0) {
		// 1e308M/s: each part is finite, the product is not.
		return 0, fmt.Errorf("%q is too large a rate", s)
	}
	return r, nil
}

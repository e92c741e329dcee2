package units

import (
	"math"
	"strings"
	"testing"
)

// FuzzParse feeds the same text to the three parsers. Each must return a value or an error, never
// panic, and a value must be one the caller can use: a duration has the sign written, written back by FormatDuration
// parses to the same duration, a size is non-negative and round-trips through FormatBytes, and a
// rate is a finite, non-negative number of events per second.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"100ms", "1h30m", "7d", "1d12h", "2w", "-3d", "+1.5d", "0", "1.5h", "300µs", "9223372036854775807ns",
		"106751d", "106752d", "1e9d", "106751.99116730064d", "15250.284452471519w", "106751d23h47m16.854775807s", "d", ".d", "1..5d", "1d-2h",
		"1048576", "1MiB", "512KiB", "1.5GB", "1 KiB", "0.5B", "-1KB", "8EiB", "1e30TB", "0x10", "Inf",
		"5000/s", "2.5k/s", "300/min", "1M/h", "1e308M/s", "-1/s", "1/fortnight", "k/s", "/s", "NaN/s",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration(s); err == nil {
			if d < 0 && !strings.HasPrefix(strings.TrimSpace(s), "-") {
				t.Fatalf("ParseDuration(%q) = %d: negative without a minus sign", s, d)
			}
			text := FormatDuration(d)
			back, err := ParseDuration(text)
			if err != nil || back != d {
				t.Fatalf("ParseDuration(%q) = %d, written %q, which parses to %d, %v", s, d, text, back, err)
			}
		}
		if n, err := ParseBytes(s); err == nil {
			if n < 0 {
				t.Fatalf("ParseBytes(%q) = %d, negative", s, n)
			}
			text := FormatBytes(n)
			back, err := ParseBytes(text)
			if err != nil || back != n {
				t.Fatalf("ParseBytes(%q) = %d, written %q, which parses to %d, %v", s, n, text, back, err)
			}
		}
		if r, err := ParseRate(s); err == nil {
			if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
				t.Fatalf("ParseRate(%q) = %v, want a finite, non-negative rate", s, r)
			}
		}
	})
}

package units

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"100ms", 100 * time.Millisecond, true},
		{"15s", 15 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"0", 0, true},
		{"-5s", -5 * time.Second, true},
		{"0.5d", 12 * time.Hour, true},
		{"", 0, false},
		{"10", 0, false},
		{"ten seconds", 0, false},
		{"5 d", 0, false},
		{"5x", 0, false},
		{"d", 0, false},
		{"99999999999999d", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseDuration(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if tc.ok && got != tc.want {
				t.Fatalf("ParseDuration(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestFormatDurationRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{0, time.Millisecond, 90 * time.Minute, 48 * time.Hour, 7*24*time.Hour + time.Second} {
		got, err := ParseDuration(FormatDuration(d))
		if err != nil || got != d {
			t.Errorf("round trip of %v via %q = %v, %v", d, FormatDuration(d), got, err)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"1MiB", 1 << 20, true},
		{"512KiB", 512 << 10, true},
		{"1MB", 1000000, true},
		{"1.5GiB", 3 << 29, true},
		{"64 KiB", 64 << 10, true},
		{"100B", 100, true},
		{"10k", 10000, true},
		{"", 0, false},
		{"-1KiB", 0, false},
		{"lots", 0, false},
		{"1.5B", 0, false},
		{"1e30TB", 0, false},
		{"NaN", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseBytes(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseBytes(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if tc.ok && got != tc.want {
				t.Fatalf("ParseBytes(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
	if FormatBytes(1<<20) != "1MiB" || FormatBytes(1500) != "1500B" {
		t.Errorf("FormatBytes: %s %s", FormatBytes(1<<20), FormatBytes(1500))
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"5000/s", 5000, true},
		{"2.5k/s", 2500, true},
		{"300/min", 5, true},
		{"3600/h", 1, true},
		{"1M/s", 1e6, true},
		{"250", 250, true},
		{"0/s", 0, true},
		{"fast", 0, false},
		{"-1/s", 0, false},
		{"10/day", 0, false},
		{"", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRate(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseRate(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if tc.ok && got != tc.want {
				t.Fatalf("ParseRate(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

package config

import (
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/stream"
)

func TestDedupConfig(t *testing.T) {
	t.Run("compiles to the first operator", func(t *testing.T) {
		c, err := parseWithEnv([]byte(add("  dedup: {ttl: 24h, dead_letter: true}\n", "source:")(good)), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Pipeline()
		if err != nil {
			t.Fatal(err)
		}
		d, ok := p.Operators[0].(*stream.Dedup)
		if !ok {
			t.Fatalf("first operator is %T, want *stream.Dedup", p.Operators[0])
		}
		if d.TTL != 24*time.Hour || !d.DeadLetter {
			t.Fatalf("dedup %+v", d)
		}
	})
	for _, tc := range []struct {
		name, edit, wantKey, wantMsg string
	}{
		{"without an event id", "  dedup: {ttl: 24h}\n", "source.dedup", "needs source.event_id"},
		{"without a ttl", "  dedup: {dead_letter: true}\n", "source.dedup.ttl", "required"},
		{"a negative ttl", "  dedup: {ttl: -1h}\n", "source.dedup.ttl", "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := add(tc.edit, "source:")(good)
			if tc.name == "without an event id" {
				cfg = rep("  event_id: event_id\n", "")(cfg)
			}
			_, err := parseWithEnv([]byte(cfg), noEnv)
			if err == nil {
				t.Fatal("accepted a bad config")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.wantKey+":") || !strings.Contains(msg, tc.wantMsg) {
				t.Fatalf("error does not name %s with %q:\n%s", tc.wantKey, tc.wantMsg, msg)
			}
		})
	}
}

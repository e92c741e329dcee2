package main

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// randomInput returns events of a few keys over four partitions (each key in one partition), at
// most 1 s out of order, seeded.
func randomInput(seed uint64, n int) [][]In {
	rng := rand.New(rand.NewPCG(seed, 1))
	parts := make([][]In, 4)
	t0 := int64(1_764_000_000_000)
	for i := range n {
		k := rng.IntN(7)
		e := In{Key: CampaignID(k), Time: t0 + int64(i)*50 - rng.Int64N(1000), Amount: float64(rng.IntN(10000)) / 100, Counts: rng.IntN(3) > 0}
		parts[k%4] = append(parts[k%4], e)
	}
	return parts
}

// naiveWindows computes the tumbling windows by scanning all events for each window: a second,
// independent implementation.
func naiveWindows(parts [][]In, size int64) []Out {
	seen := map[winKey]bool{}
	var outs []Out
	for _, p := range parts {
		for _, e := range p {
			if !e.Counts {
				continue
			}
			k := winKey{e.Key, floorDiv(e.Time, size) * size}
			if seen[k] {
				continue
			}
			seen[k] = true
			o := Out{Key: k.key, Start: k.start, End: k.start + size}
			var s float64
			for _, q := range parts {
				for _, f := range q {
					if f.Counts && f.Key == k.key && f.Time >= k.start && f.Time < k.start+size {
						o.Count++
						s += f.Amount
					}
				}
			}
			o.Sum = &s
			outs = append(outs, o)
		}
	}
	return outs
}

func TestCheckWindows(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	parts := randomInput(seed, 3000) // 150 s of event time
	size := 10 * time.Second
	good := naiveWindows(parts, size.Milliseconds())
	if r := CheckWindows(parts, size, good); r.Err != "" || r.Required == 0 {
		t.Fatalf("correct results: %+v", r)
	}
	// The newest window of each key is past the cutoff: leaving those out is fine.
	var open []Out
	newest := map[string]int64{}
	for _, o := range good {
		newest[o.Key] = max(newest[o.Key], o.Start)
	}
	for _, o := range good {
		if o.Start != newest[o.Key] {
			open = append(open, o)
		}
	}
	if r := CheckWindows(parts, size, open); r.Err != "" {
		t.Fatalf("without the open windows: %s", r.Err)
	}
	mutations := []struct {
		name string
		f    func([]Out) []Out
		want string
	}{
		{"count", func(o []Out) []Out { o[0].Count++; return o }, "want"},
		{"sum", func(o []Out) []Out { s := *o[0].Sum + 0.01; o[0].Sum = &s; return o }, "want"},
		{"duplicate", func(o []Out) []Out { return append(o, o[3]) }, "twice"},
		{"missing", func(o []Out) []Out { return o[1:] }, "missing"},
		{"invented", func(o []Out) []Out { return append(o, Out{Key: "nobody", Start: 0, End: 10000, Count: 1}) }, "not in the input"},
		{"length", func(o []Out) []Out { o[0].End++; return o }, "long"},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			outs := m.f(append([]Out(nil), naiveWindows(parts, size.Milliseconds())...))
			if r := CheckWindows(parts, size, outs); !strings.Contains(r.Err, m.want) {
				t.Fatalf("error %q, want one with %q", r.Err, m.want)
			}
		})
	}
}

// naiveSliding computes each event's result by scanning its key's earlier events.
func naiveSliding(parts [][]In) []Out {
	size, res := Slide.Milliseconds(), Pane.Milliseconds()
	var outs []Out
	for _, p := range parts {
		for i, e := range p {
			pane := floorDiv(e.Time, res) * res
			o := Out{Key: e.Key, Start: pane - size + res, End: pane + res}
			var s float64
			for _, f := range p[:i+1] {
				if fp := floorDiv(f.Time, res) * res; f.Key == e.Key && fp > pane-size && fp <= pane {
					o.Count++
					s += f.Amount
				}
			}
			o.Sum = &s
			outs = append(outs, o)
		}
	}
	return outs
}

func TestCheckSliding(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	parts := randomInput(seed, 2000)
	for _, p := range parts { // spread over 25 minutes, so that panes leave the window
		for i := range p {
			p[i].Time += int64(i) * 700
		}
	}
	if r := CheckSliding(parts, naiveSliding(parts)); r.Err != "" {
		t.Fatalf("correct results: %s", r.Err)
	}
	mutations := []struct {
		name string
		f    func([]Out) []Out
		want string
	}{
		{"count", func(o []Out) []Out { o[5].Count--; return o }, "want"},
		{"window", func(o []Out) []Out { o[5].Start += 10000; return o }, "want"},
		{"extra", func(o []Out) []Out { return append(o, o[0]) }, "more than"},
		{"missing", func(o []Out) []Out { return o[:len(o)-1] }, "fewer results"},
		{"order", func(o []Out) []Out {
			// Two results of one key swapped: the same multiset, in the wrong order.
			for j := 1; j < len(o); j++ {
				if o[j].Key == o[0].Key && o[j].Count != o[0].Count {
					o[0], o[j] = o[j], o[0]
					break
				}
			}
			return o
		}, "want"},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			if r := CheckSliding(parts, m.f(naiveSliding(parts))); !strings.Contains(r.Err, m.want) {
				t.Fatalf("error %q, want one with %q", r.Err, m.want)
			}
		})
	}
}

func TestParseOut(t *testing.T) {
	for _, tc := range []struct{ name, v string }{
		{"streamd", `{"window":"w","key":"card-1","start":60000,"end":120000,"emit":"final","count":3,"aggs":{"count":3,"sum_amount":12.5}}`},
		{"peers", `{"key":"card-1","start":60000,"end":120000,"count":3,"sum":12.5}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOut([]byte(tc.v))
			if err != nil || o.Key != "card-1" || o.Start != 60000 || o.End != 120000 || o.Count != 3 || o.sum() != 12.5 {
				t.Fatalf("%+v, %v", o, err)
			}
		})
	}
}

func TestAdGen(t *testing.T) {
	a, b := NewAdGen(7), NewAdGen(7)
	table := a.Table()
	if len(table) != 1000 {
		t.Fatalf("table of %d ads, want 1000", len(table))
	}
	now := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	types := map[string]int{}
	for i := range 3000 {
		at := now.Add(time.Duration(i) * time.Millisecond)
		ka, va := a.Next(at)
		kb, vb := b.Next(at)
		if string(ka) != string(kb) || string(va) != string(vb) {
			t.Fatalf("record %d differs between two generators of one seed", i)
		}
		var e struct {
			Ad, Campaign, Type, Time string
		}
		var raw map[string]string
		if err := json.Unmarshal(va, &raw); err != nil {
			t.Fatalf("record %d: %v: %s", i, err, va)
		}
		e.Ad, e.Campaign, e.Type, e.Time = raw["ad_id"], raw["campaign_id"], raw["event_type"], raw["event_time"]
		if table[e.Ad] != e.Campaign || string(ka) != e.Campaign {
			t.Fatalf("record %d: ad %s campaign %s key %s, table says %s", i, e.Ad, e.Campaign, ka, table[e.Ad])
		}
		ts, err := time.Parse(time.RFC3339Nano, e.Time)
		if err != nil || ts.After(at) || at.Sub(ts) > a.OutOfOrder {
			t.Fatalf("record %d: event time %s at %s: %v", i, e.Time, at, err)
		}
		types[e.Type]++
	}
	for _, ty := range eventTypes {
		if types[ty] < 900 || types[ty] > 1100 {
			t.Errorf("%d %s events of 3000, want about 1000", types[ty], ty)
		}
	}
}

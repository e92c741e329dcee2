package gen

import (
	"math"
	"slices"
	"testing"
	"time"
)

// sample is one valid transaction with what a model could know about it.
type sample struct {
	raw    []float64 // raw fields
	window []float64 // per-card windowed features
	fraud  bool
}

// The feature windows in records; at one record per millisecond of event time they are a few seconds
// and a minute, standing in for the minutes and hours of a slower stream.
const (
	shortWindow = 4000
	longWindow  = 60000
)

// window keeps per-card counts, amount sums and distinct merchants over the last size transactions.
type window struct {
	size     int
	ring     []windowEntry
	count    []int32
	sum      []float64
	distinct []int32
	pairs    map[uint64]int32 // card<<16 | merchant -> count
}

type windowEntry struct {
	card, merchant int
	amount         float64
}

func newWindow(size, keys int) *window {
	return &window{size: size, count: make([]int32, keys), sum: make([]float64, keys),
		distinct: make([]int32, keys), pairs: map[uint64]int32{}}
}

func (w *window) add(card, merchant int, amount float64) {
	w.ring = append(w.ring, windowEntry{card, merchant, amount})
	w.count[card]++
	w.sum[card] += amount
	k := uint64(card)<<16 | uint64(merchant)
	if w.pairs[k]++; w.pairs[k] == 1 {
		w.distinct[card]++
	}
	if len(w.ring) > w.size {
		old := w.ring[len(w.ring)-w.size-1]
		w.count[old.card]--
		w.sum[old.card] -= old.amount
		k := uint64(old.card)<<16 | uint64(old.merchant)
		if w.pairs[k]--; w.pairs[k] == 0 {
			delete(w.pairs, k)
			w.distinct[old.card]--
		}
	}
}

// num parses the decimal digits after prefix.
func num(s, prefix string) int {
	n := 0
	for _, c := range s[len(prefix):] {
		n = n*10 + int(c-'0')
	}
	return n
}

// collect generates n records (one per millisecond of event time) and turns the valid ones into samples.
func collect(t testing.TB, cfg Config, n int) []sample {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mccIndex := map[int]int{}
	for i, m := range mccs {
		mccIndex[m.code] = i
	}
	chIndex := map[string]int{"pos": 0, "online": 1, "atm": 2}
	short, long := newWindow(shortWindow, g.cfg.Keys), newWindow(longWindow, g.cfg.Keys)

	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	out := make([]sample, 0, n)
	for i := range n {
		rec := g.Next(start.Add(time.Duration(i) * time.Millisecond))
		if rec.Bad != NotBad {
			continue
		}
		tx := rec.Tx
		// Windowed features, from the card's transactions before this one.
		card, merchant := num(tx.CardID, "card-"), num(tx.Merchant, "m-")
		cs, cl := short.count[card], long.count[card]
		distinct := 1.0
		if cs > 0 {
			distinct = float64(short.distinct[card]) / float64(cs)
		}
		s := sample{fraud: tx.Fraud}
		s.window = []float64{
			math.Log1p(float64(cs)) / 3, math.Log1p(float64(cl)) / 3, distinct,
			math.Log1p(short.sum[card]) / 10, math.Log1p(long.sum[card]) / 10,
		}
		home := countries[g.home(card)].code
		s.raw = make([]float64, 0, 4+int(numChannels)+numMCCs)
		s.raw = append(s.raw, b2f(tx.Country != home), math.Log(tx.Amount)/5)
		for ch := range numChannels {
			s.raw = append(s.raw, b2f(chIndex[tx.Channel] == int(ch)))
		}
		for m := range numMCCs {
			s.raw = append(s.raw, b2f(mccIndex[tx.MCC] == m))
		}
		out = append(out, s)
		short.add(card, merchant, tx.Amount)
		long.add(card, merchant, tx.Amount)
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// features builds a sample's feature vector from the chosen groups.
func features(s *sample, raw, window bool) []float64 {
	var x []float64
	if raw {
		x = append(x, s.raw...)
	}
	if window {
		x = append(x, s.window...)
	}
	return x
}

// trainLR fits a logistic regression by a few epochs of SGD and returns its weights (bias last).
func trainLR(xs [][]float64, ys []bool) []float64 {
	d := len(xs[0])
	w := make([]float64, d+1)
	lr := 0.05
	for range 4 {
		for i, x := range xs {
			z := w[d]
			for j, v := range x {
				z += w[j] * v
			}
			grad := sigmoid(z) - b2f(ys[i])
			for j, v := range x {
				w[j] -= lr * grad * v
			}
			w[d] -= lr * grad
		}
		lr /= 2
	}
	return w
}

func score(w, x []float64) float64 {
	z := w[len(w)-1]
	for j, v := range x {
		z += w[j] * v
	}
	return z
}

// auc is the probability that a random fraud scores above a random non-fraud (ties count half).
func auc(scores []float64, ys []bool) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case scores[a] < scores[b]:
			return -1
		case scores[a] > scores[b]:
			return 1
		}
		return 0
	})
	var pos, neg, rankSum float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		avgRank := float64(i+j+1) / 2 // 1-based ranks i+1..j
		for k := i; k < j; k++ {
			if ys[idx[k]] {
				rankSum += avgRank
				pos++
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return 0.5
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

// evalAUC trains on train and returns the AUC on test, for the chosen feature groups.
func evalAUC(train, test []sample, raw, window bool) (float64, []float64) {
	xs := make([][]float64, len(train))
	ys := make([]bool, len(train))
	for i := range train {
		xs[i] = features(&train[i], raw, window)
		ys[i] = train[i].fraud
	}
	w := trainLR(xs, ys)
	return aucOf(w, test, raw, window), w
}

func aucOf(w []float64, test []sample, raw, window bool) float64 {
	scores := make([]float64, len(test))
	ys := make([]bool, len(test))
	for i := range test {
		scores[i] = score(w, features(&test[i], raw, window))
		ys[i] = test[i].fraud
	}
	return auc(scores, ys)
}

func TestGroundTruthLearnable(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 60_000
	}
	ss := collect(t, Config{Seed: 7}, n)
	train, test := ss[:len(ss)/2], ss[len(ss)/2:]
	rawAUC, _ := evalAUC(train, test, true, false)
	winAUC, _ := evalAUC(train, test, false, true)
	bothAUC, _ := evalAUC(train, test, true, true)
	t.Logf("AUC raw %.3f, windowed %.3f, raw+windowed %.3f", rawAUC, winAUC, bothAUC)
	if rawAUC < 0.75 {
		t.Errorf("raw fields AUC %.3f, want >= 0.75", rawAUC)
	}
	if bothAUC < rawAUC+0.02 {
		t.Errorf("raw+windowed AUC %.3f, want at least 0.02 above raw alone (%.3f)", bothAUC, rawAUC)
	}
}

func TestDriftChangesPattern(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 80_000
	}
	ss := collect(t, Config{Seed: 11, DriftAt: int64(n / 2)}, n)
	// Records before DriftAt; BadRatio is 0 so samples and records coincide.
	before, after := ss[:n/2], ss[n/2:]
	auc0, w0 := evalAUC(before[:len(before)/2], before[len(before)/2:], true, false)
	stale := aucOf(w0, after[len(after)/2:], true, false)
	auc1, _ := evalAUC(after[:len(after)/2], after[len(after)/2:], true, false)
	t.Logf("AUC before drift %.3f; pre-drift model after drift %.3f; retrained after drift %.3f", auc0, stale, auc1)
	if stale > auc0-0.15 {
		t.Errorf("pre-drift model after the drift: AUC %.3f, want well below %.3f", stale, auc0)
	}
	if auc1 < 0.7 {
		t.Errorf("retrained after drift: AUC %.3f, want >= 0.7", auc1)
	}
	frac := func(ss []sample, f func(*sample) bool) float64 {
		var fraud, hit float64
		for i := range ss {
			if ss[i].fraud {
				fraud++
				if f(&ss[i]) {
					hit++
				}
			}
		}
		return hit / fraud
	}
	foreign := func(s *sample) bool { return s.raw[0] == 1 }
	pos := func(s *sample) bool { return s.raw[2] == 1 }
	t.Logf("fraud foreign share %.2f -> %.2f, pos share %.2f -> %.2f",
		frac(before, foreign), frac(after, foreign), frac(before, pos), frac(after, pos))
	if frac(before, foreign) < 2*frac(after, foreign) {
		t.Errorf("foreign share of fraud should drop sharply after the drift")
	}
	if frac(after, pos) < 2*frac(before, pos) {
		t.Errorf("POS share of fraud should rise sharply after the drift")
	}
}

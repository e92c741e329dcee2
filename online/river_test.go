package online_test

import (
	"encoding/csv"
	"errors"
	"io/fs"
	"math"
	"os"
	"strconv"
	"testing"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/online/metrics"
	"github.com/streamd/streamd/online/preprocess"
)

// loadPhishing reads River's Phishing data set as exported by
// scripts/river_compare.py: 9 numeric features, then the 0/1 label.
func loadPhishing(t *testing.T) (xs [][]float64, ys []float64) {
	f, err := os.Open("testdata/phishing.csv")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("testdata/phishing.csv absent: run scripts/river_compare.py --export online/testdata/phishing.csv")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows[1:] {
		x := make([]float64, len(row)-1)
		for i := range x {
			if x[i], err = strconv.ParseFloat(row[i], 64); err != nil {
				t.Fatal(err)
			}
		}
		y, err := strconv.ParseFloat(row[len(row)-1], 64)
		if err != nil {
			t.Fatal(err)
		}
		xs, ys = append(xs, x), append(ys, y)
	}
	return xs, ys
}

type progressiveResult struct {
	acc, logloss, auc, aucBound, exactAUC float64
}

// runPhishing scores then learns each example in order, as River's
// progressive_val_score does. With scale, a Standardizer is applied the way
// River's StandardScaler | LogisticRegression pipeline does: prediction uses
// the statistics of the examples before, learning first updates them with x.
func runPhishing(t *testing.T, spec online.Spec, scale bool, xs [][]float64, ys []float64) progressiveResult {
	l, err := online.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	std, _ := preprocess.NewStandardizer(len(xs[0]))
	acc, _ := metrics.NewAccuracy(0)
	ll, _ := metrics.NewLogLoss(0)
	auc, _ := metrics.NewROCAUC(0, 0)
	vec := func(raw []float64) online.Vector {
		v := make(online.Vector, 0, len(raw))
		for i, r := range raw {
			if scale {
				r = std.Transform(i, r)
			}
			if r != 0 {
				v = append(v, online.Feature{Index: uint32(i), Value: r})
			}
		}
		return v
	}
	var scores []float64
	for i, raw := range xs {
		p, class := l.Predict(vec(raw), nil)
		acc.Update(class, int(ys[i]))
		ll.Update(p, ys[i])
		auc.Update(p, ys[i])
		scores = append(scores, p)
		if scale {
			for j, r := range raw {
				std.Learn(j, r)
			}
		}
		l.Learn(vec(raw), ys[i])
	}
	return progressiveResult{acc.Value(), ll.Value(), auc.Value(), auc.ErrorBound(), exactAUCOf(scores, ys)}
}

func exactAUCOf(s, y []float64) float64 {
	var ordered, pairs float64
	for i := range s {
		for j := range s {
			if y[i] == 1 && y[j] == 0 {
				pairs++
				switch {
				case s[i] > s[j]:
					ordered++
				case s[i] == s[j]:
					ordered += 0.5
				}
			}
		}
	}
	return ordered / pairs
}

// TestRiverPhishing runs streamd's learners over River's Phishing stream
// with progressive validation and checks the figures are sane; the River
// side is scripts/river_compare.py, and both are in docs/BENCHMARKS.md.
func TestRiverPhishing(t *testing.T) {
	xs, ys := loadPhishing(t)
	pos := 0.0
	for _, y := range ys {
		pos += y
	}
	baseline := max(pos, float64(len(ys))-pos) / float64(len(ys))
	cases := []struct {
		name   string
		spec   online.Spec
		scale  bool
		minAcc float64
		minAUC float64
		maxLL  float64
	}{
		{"ftrl (alpha .05, beta 1, l1 0, l2 1) + scaler", online.FTRLSpec{Dim: 16, Alpha: 0.05, Beta: 1, L1: -1, L2: 1}, true, 0.85, 0.93, 0.40},
		{"ftrl (alpha .1, beta 1, l1 1, l2 1) + scaler", online.FTRLSpec{Dim: 16}, true, 0.85, 0.93, 0.40},
		{"hoeffding tree (defaults)", online.TreeSpec{Dim: 16}, false, 0.80, 0.85, 0.60},
	}
	t.Logf("Phishing: %d examples, majority-class accuracy %.4f", len(ys), baseline)
	recordf("phishing: %d examples, majority-class accuracy %.4f", len(ys), baseline)
	for _, c := range cases {
		r := runPhishing(t, c.spec, c.scale, xs, ys)
		t.Logf("streamd %s: accuracy %.4f, log loss %.4f, ROC AUC %.4f (binned; exact %.4f, bound %.1e)", c.name, r.acc, r.logloss, r.auc, r.exactAUC, r.aucBound)
		recordf("| streamd %s | %.4f | %.4f | %.4f | %d |", c.name, r.acc, r.logloss, r.exactAUC, len(ys))
		if r.acc < c.minAcc || r.acc <= baseline || r.auc < c.minAUC || r.logloss > c.maxLL || math.IsNaN(r.logloss) {
			t.Errorf("%s: accuracy %.4f (want >= %.2f and above the %.4f baseline), AUC %.4f (want >= %.2f), log loss %.4f (want <= %.2f)",
				c.name, r.acc, c.minAcc, baseline, r.auc, c.minAUC, r.logloss, c.maxLL)
		}
		if math.Abs(r.auc-r.exactAUC) > r.aucBound+1e-12 {
			t.Errorf("%s: binned AUC %v differs from exact %v by more than its bound %v", c.name, r.auc, r.exactAUC, r.aucBound)
		}
	}
}

package online_test

import (
	"compress/gzip"
	"encoding/csv"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/online/preprocess"
)

// loadCSV reads a data set exported by scripts/river_compare.py --export-dir: numeric features
// in River's column order, then the label or target. It skips the test if the file is absent.
func loadCSV(t testing.TB, name string) (xs [][]float64, ys []float64) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("testdata/%s absent: run scripts/river_compare.py --export-dir online/testdata", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var in io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		in = z
	}
	rows, err := csv.NewReader(in).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows[1:] {
		v := make([]float64, len(row))
		for i := range v {
			if v[i], err = strconv.ParseFloat(row[i], 64); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		xs, ys = append(xs, v[:len(v)-1]), append(ys, v[len(v)-1])
	}
	return xs, ys
}

// regressionFigures are the progressive MAE and RMSE of one learner on one data set.
type regressionFigures struct{ mae, rmse float64 }

// runRegression scores then learns each example in order, as River's progressive_val_score does,
// with the features standardized as River's StandardScaler (and the model operator's standardize
// transform) do: prediction uses the statistics of the examples before, learning first updates
// them with x.
func runRegression(t *testing.T, spec online.Spec, xs [][]float64, ys []float64) regressionFigures {
	t.Helper()
	l, err := online.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	std, _ := preprocess.NewStandardizer(len(xs[0]))
	vec := func(raw []float64) online.Vector {
		v := make(online.Vector, 0, len(raw))
		for i, r := range raw {
			if r = std.Transform(i, r); r != 0 {
				v = append(v, online.Feature{Index: uint32(i), Value: r})
			}
		}
		return v
	}
	var abs, sq float64
	for i, raw := range xs {
		p, _ := l.Predict(vec(raw), nil)
		abs += math.Abs(p - ys[i])
		sq += (p - ys[i]) * (p - ys[i])
		for j, r := range raw {
			std.Learn(j, r)
		}
		l.Learn(vec(raw), ys[i])
	}
	n := float64(len(xs))
	return regressionFigures{abs / n, math.Sqrt(sq / n)}
}

// riverRegression holds River 0.26.1's figures from scripts/river_compare.py (progressive
// validation, defaults): StandardScaler | LinearRegression, and the same inside a
// TargetStandardScaler.
var riverRegression = map[string]struct{ plain, targetScaled regressionFigures }{
	"trump_approval.csv": {regressionFigures{1.3145, 3.9120}, regressionFigures{0.3856, 1.4541}},
	"chick_weights.csv":  {regressionFigures{23.7587, 37.0377}, regressionFigures{22.2591, 36.2361}},
	"sp500_stocks.csv":   {regressionFigures{0.6358, 0.9516}, regressionFigures{0.6382, 0.9552}},
}

// TestRiverRegression: adagrad_linear at its defaults (target standardized) is within 5% of
// River's StandardScaler | LinearRegression's MAE, or better, on each of River's bundled
// regression data sets; the unscaled learner is measured beside it for the record.
func TestRiverRegression(t *testing.T) {
	for _, name := range []string{"trump_approval.csv", "chick_weights.csv", "sp500_stocks.csv"} {
		t.Run(name, func(t *testing.T) {
			xs, ys := loadCSV(t, name)
			river := riverRegression[name]
			def := runRegression(t, online.LinearSpec{Dim: 16}, xs, ys)
			raw := runRegression(t, online.LinearSpec{Dim: 16, TargetScaling: online.TargetNone}, xs, ys)
			t.Logf("%s: streamd adagrad_linear MAE %.4f RMSE %.4f; target_scaling none MAE %.4f RMSE %.4f; River %+v",
				name, def.mae, def.rmse, raw.mae, raw.rmse, river)
			recordf("| %s | streamd adagrad_linear (defaults) | %.4f | %.4f | %d |", name, def.mae, def.rmse, len(xs))
			recordf("| %s | streamd adagrad_linear, target_scaling none | %.4f | %.4f | %d |", name, raw.mae, raw.rmse, len(xs))
			if def.mae > 1.05*river.plain.mae || math.IsNaN(def.mae) {
				t.Errorf("MAE %.4f, want within 5%% of River's %.4f", def.mae, river.plain.mae)
			}
		})
	}
}

package gbdt

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The fixtures under testdata/ are written by testdata/gen/gen.py (see its header): models
// trained by XGBoost and LightGBM on scikit-learn's bundled data sets, ≥10,000 evaluation rows
// per data set (with missing values, zeros, unseen categories and values on split thresholds),
// and the libraries' own predictions, margins and pred_contribs.
type manifest struct {
	Versions map[string]string `json:"versions"`
	Rows     int               `json:"rows"`
	Inputs   map[string]struct {
		File        string   `json:"file"`
		Features    []string `json:"features"`
		Categorical []string `json:"categorical"`
	} `json:"inputs"`
	Models []struct {
		Name          string `json:"name"`
		Library       string `json:"library"`
		Objective     string `json:"objective"`
		File          string `json:"file"`
		Dataset       string `json:"dataset"`
		Outputs       int    `json:"outputs"`
		NumTrees      int    `json:"num_trees"`
		BestIteration *int   `json:"best_iteration"`
		Expect        string `json:"expect"`
		Shap          string `json:"shap"`
	} `json:"models"`
}

func readManifest(t testing.TB) manifest {
	t.Helper()
	b, err := os.ReadFile("testdata/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// readCSV reads a gzip'd CSV with a header; an empty cell is NaN. bits is the precision the
// numbers were written at (32: shortest float32 decimals, read back to the same float32).
func readCSV(t testing.TB, path string, bits int) (header []string, rows [][]float64) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		cells := strings.Split(sc.Text(), ",")
		if header == nil {
			header = cells
			continue
		}
		row := make([]float64, len(cells))
		for i, c := range cells {
			if c == "" {
				row[i] = math.NaN()
				continue
			}
			v, err := strconv.ParseFloat(c, bits)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			row[i] = v
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return header, rows
}

// pipelineLayout puts the model's features in a shuffled vector with extra features the model
// does not use, so that the tests go through Bind's mapping by name.
func pipelineLayout(features []string, rng *rand.Rand) (names []string, pos []int) {
	names = append([]string{"unused_a", "unused_b"}, features...)
	rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	at := map[string]int{}
	for i, n := range names {
		at[n] = i
	}
	pos = make([]int, len(features))
	for j, f := range features {
		pos[j] = at[f]
	}
	return names, pos
}

// TestExactness compares every prediction, margin and contribution with the library's own on
// every fixture row. Predictions and margins must agree within 1e-6 (XGBoost's are reproduced
// bit for bit in float32), contributions within 1e-5.
func TestExactness(t *testing.T) {
	man := readManifest(t)
	t.Logf("fixtures from %v", man.Versions)
	inputs := map[string][][]float64{}
	for _, mm := range man.Models {
		t.Run(mm.Name, func(t *testing.T) {
			in := man.Inputs[mm.Dataset]
			rows, ok := inputs[mm.Dataset]
			if !ok {
				var header []string
				header, rows = readCSV(t, in.File, 64)
				if strings.Join(header, ",") != strings.Join(in.Features, ",") {
					t.Fatalf("input header %v, manifest %v", header, in.Features)
				}
				inputs[mm.Dataset] = rows
			}
			if len(rows) < 10_000 || len(rows) != man.Rows {
				t.Fatalf("%d rows, want %d (>= 10,000)", len(rows), man.Rows)
			}
			m, err := LoadFile(filepath.Join("testdata", mm.File))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Library().String(); got != mm.Library {
				t.Fatalf("library %s, want %s", got, mm.Library)
			}
			if m.Objective() != mm.Objective || m.Outputs() != mm.Outputs {
				t.Fatalf("objective %q outputs %d, want %q %d", m.Objective(), m.Outputs(), mm.Objective, mm.Outputs)
			}
			if strings.Join(m.FeatureNames(), ",") != strings.Join(in.Features, ",") {
				t.Fatalf("features %v, want %v", m.FeatureNames(), in.Features)
			}
			for _, c := range in.Categorical {
				for _, f := range m.Features() {
					if f.Name == c && !f.Categorical {
						t.Errorf("feature %s is categorical in the data, not in the model", c)
					}
				}
			}
			if mm.BestIteration != nil && m.BestIteration() != *mm.BestIteration {
				t.Errorf("best iteration %d, want %d", m.BestIteration(), *mm.BestIteration)
			}
			bits := 64
			if m.Library() == XGBoost {
				bits = 32
			}
			_, want := readCSV(t, mm.Expect, bits)
			shapHeader, wantShap := readCSV(t, mm.Shap, bits)
			if len(want) != len(rows) {
				t.Fatalf("%d expected rows for %d inputs", len(want), len(rows))
			}
			if len(shapHeader) != m.Outputs()+m.ContributionsLen() {
				t.Fatalf("shap header has %d columns, want %d", len(shapHeader), m.Outputs()+m.ContributionsLen())
			}

			seed := uint64(len(mm.Name))
			names, pos := pipelineLayout(in.Features, rand.New(rand.NewPCG(seed, 1)))
			s, err := m.Bind(names)
			if err != nil {
				t.Fatal(err)
			}
			x := make([]float64, len(names))
			pred := make([]float64, m.Outputs())
			margin := make([]float64, m.Outputs())
			contrib := make([]float64, m.ContributionsLen())
			var maxPred, maxMargin, maxShap, maxSum float64
			for r, row := range rows {
				for i := range x {
					x[i] = 1e9 // the unused features: must not matter
				}
				for j, p := range pos {
					x[p] = row[j]
				}
				s.Predict(x, pred)
				for k, v := range pred {
					d := math.Abs(v - want[r][k])
					if !(d <= 1e-6) {
						t.Fatalf("row %d output %d: predict %v, library %v (diff %g)\nrow %v", r, k, v, want[r][k], d, row)
					}
					maxPred = max(maxPred, d)
				}
				if r >= len(wantShap) || (raceEnabled && r >= 100) {
					continue
				}
				s.Margin(x, margin)
				for k, v := range margin {
					d := math.Abs(v - wantShap[r][k])
					if !(d <= 1e-6) {
						t.Fatalf("row %d output %d: margin %v, library %v (diff %g)", r, k, v, wantShap[r][k], d)
					}
					maxMargin = max(maxMargin, d)
				}
				s.Contributions(x, contrib)
				for i, v := range contrib {
					w := wantShap[r][m.Outputs()+i]
					d := math.Abs(v - w)
					if !(d <= 1e-5) {
						t.Fatalf("row %d column %s: contribution %v, library %v (diff %g)", r, shapHeader[m.Outputs()+i], v, w, d)
					}
					maxShap = max(maxShap, d)
				}
				// Local accuracy: each output's contributions sum to its margin.
				cols := m.NumFeatures() + 1
				for k := range margin {
					var sum float64
					for _, v := range contrib[k*cols : (k+1)*cols] {
						sum += v
					}
					maxSum = max(maxSum, math.Abs(sum-margin[k])/max(1, math.Abs(margin[k])))
				}
			}
			if maxSum > 1e-4 {
				t.Errorf("contributions sum to the margin within %g (relative), want 1e-4", maxSum)
			}
			t.Logf("%s %s (%d trees, %d rows, %d with SHAP): max abs error predict %.3g, margin %.3g, contributions %.3g; sum-to-margin %.3g",
				mm.Library, mm.Objective, m.NumTrees(), len(rows), len(wantShap), maxPred, maxMargin, maxShap, maxSum)
		})
	}
}

// TestFixtureCoverage: the fixture models exercise every kind of split the scorer handles, so
// that TestExactness covers them against the libraries.
func TestFixtureCoverage(t *testing.T) {
	type counts map[string]int
	got := map[Library]counts{XGBoost: {}, LightGBM: {}}
	count := func(c counts, kind, missRight uint8) {
		switch kind {
		case kindNumeric:
			c["numeric"]++
			c["numeric missing "+map[uint8]string{0: "left", 1: "right"}[missRight]]++
		case kindZeroMissing:
			c["zero-missing"]++
		case kindCategorical:
			c["categorical"]++
		case kindNumericLE, kindZeroMissingLE:
			c["threshold +Inf"]++
		}
	}
	man := readManifest(t)
	for _, mm := range man.Models {
		m, err := LoadFile(filepath.Join("testdata", mm.File))
		if err != nil {
			t.Fatal(err)
		}
		c := got[m.Library()]
		if (m.f32 != nil && m.f32.simple) || (m.f64 != nil && m.f64.simple) {
			c["simple forest"]++ // the bare-comparison path of margins
		} else {
			c["general forest"]++
		}
		if m.f32 != nil {
			for _, n := range m.f32.nodes {
				count(c, n.kind, n.missRight)
			}
		} else {
			for _, n := range m.f64.nodes {
				count(c, n.kind, n.missRight)
			}
		}
		c[m.Task().String()]++
		if m.BestIteration() >= 0 {
			c["best_iteration"]++
		}
		c[m.Format()]++
	}
	for lib, want := range map[Library][]string{
		XGBoost:  {"simple forest", "general forest", "numeric missing left", "numeric missing right", "categorical", "binary", "regression", "multiclass", "best_iteration", "xgboost-json", "xgboost-ubjson"},
		LightGBM: {"simple forest", "general forest", "numeric missing left", "numeric missing right", "categorical", "zero-missing", "threshold +Inf", "binary", "regression", "multiclass"},
	} {
		for _, k := range want {
			if got[lib][k] == 0 {
				t.Errorf("%s fixtures have no %s", lib, k)
			}
		}
		t.Logf("%s: %v", lib, got[lib])
	}
}

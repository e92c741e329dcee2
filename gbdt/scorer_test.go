package gbdt

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinyLGBCat: one categorical split on "c", categories {1, 3} going left.
var tinyLGBCat = strings.NewReplacer(
	"num_cat=0\nsplit_feature=0\nsplit_gain=1\nthreshold=5\ndecision_type=10",
	"num_cat=1\nsplit_feature=1\nsplit_gain=1\nthreshold=0\ndecision_type=1",
	"is_linear=0\nshrinkage=1\n\nTree=1", "cat_boundaries=0 1\ncat_threshold=10\nis_linear=0\nshrinkage=1\n\nTree=1",
	"feature_names=a b", "feature_names=a c",
	"feature_infos=[0:10] [0:1]", "feature_infos=[0:10] 1:3",
).Replace(tinyLGB)

func TestLightGBMCategories(t *testing.T) {
	m, err := Load(strings.NewReader(tinyLGBCat))
	if err != nil {
		t.Fatal(err)
	}
	if f := m.Features(); f[0].Categorical || !f[1].Categorical {
		t.Fatalf("features %+v: want c categorical", f)
	}
	s, _ := m.Bind([]string{"a", "c"})
	out := make([]float64, 1)
	const in, notIn = 1.5 + 0.25, -2.5 + 0.25
	for _, tc := range []struct{ c, want float64 }{
		{1, in}, {3, in}, {3.7, in}, // truncated to 3
		{0, notIn}, {2, notIn}, {-0.5, notIn}, // static_cast<int>(-0.5) is 0: not in the set
		{-1, notIn}, {40, notIn}, {math.NaN(), notIn}, {1 << 40, notIn}, {math.Inf(1), notIn},
	} {
		s.Predict([]float64{0, tc.c}, out)
		if out[0] != tc.want {
			t.Errorf("c=%v: %v, want %v", tc.c, out[0], tc.want)
		}
	}
}

// benchModel loads a model and makes 1,000 random rows; nanRate of the cells are missing.
func benchModel(t testing.TB, name string) (*Model, *Scorer, [][]float64) {
	return benchModelNaN(t, name, 0.02)
}

func benchModelNaN(t testing.TB, name string, nanRate float64) (*Model, *Scorer, [][]float64) {
	t.Helper()
	m, err := LoadFile(filepath.Join("testdata/models", name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Bind(m.FeatureNames())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([][]float64, 1000)
	for i := range rows {
		rows[i] = make([]float64, m.NumFeatures())
		for j := range rows[i] {
			rows[i][j] = rng.NormFloat64() * 2
			if rng.Float64() < nanRate {
				rows[i][j] = math.NaN()
			}
		}
	}
	return m, s, rows
}

// TestZeroAllocs: the per-record calls allocate nothing, counted over 1,000 rows per run so that
// an allocation every few rows cannot hide in the integer average.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, name := range []string{"bench_xgb.ubj.gz", "bench_lgb.txt.gz", "xgb_multiclass.ubj.gz", "lgb_regression.txt.gz"} {
		t.Run(name, func(t *testing.T) {
			m, s, rows := benchModel(t, name)
			out := make([]float64, m.Outputs())
			contrib := make([]float64, m.ContributionsLen())
			top := make([]Contribution, 0, 5)
			s.Contributions(rows[0], contrib) // sizes the SHAP scratch once
			for what, f := range map[string]func(x []float64){
				"Predict":       func(x []float64) { s.Predict(x, out) },
				"Margin":        func(x []float64) { s.Margin(x, out) },
				"Contributions": func(x []float64) { s.Contributions(x, contrib); top = m.TopK(contrib, 0, 5, top) },
			} {
				n := len(rows)
				if what == "Contributions" {
					n = 10
				}
				if a := testing.AllocsPerRun(5, func() {
					for _, x := range rows[:n] {
						f(x)
					}
				}); a != 0 {
					t.Errorf("%s: %v allocations per %d rows", what, a, n)
				}
			}
		})
	}
}

func TestTopK(t *testing.T) {
	m, err := Load(strings.NewReader(tinyLGB))
	if err != nil {
		t.Fatal(err)
	}
	// A wider model for the selection: the fixture with 30 features.
	wide, err := LoadFile("testdata/models/xgb_binary.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 3))
	for iter := 0; iter < 500; iter++ {
		mod := wide
		if iter%10 == 0 {
			mod = m
		}
		c := make([]float64, mod.ContributionsLen())
		for i := range c {
			c[i] = float64(rng.IntN(7) - 3) // many ties, and zeros
		}
		k := rng.IntN(mod.NumFeatures() + 3)
		got := mod.TopK(c, 0, k, nil)
		// Reference: sort all features.
		all := make([]Contribution, mod.NumFeatures())
		for j := range all {
			all[j] = Contribution{Feature: j, Name: mod.FeatureNames()[j], Value: c[j]}
		}
		slices.SortFunc(all, func(a, b Contribution) int {
			if c := cmp.Compare(math.Abs(b.Value), math.Abs(a.Value)); c != 0 {
				return c
			}
			return cmp.Compare(a.Feature, b.Feature)
		})
		want := all[:min(k, len(all))]
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d iter %d k=%d:\n got %v\nwant %v", seed, iter, k, got, want)
		}
	}
}

// TestFormatsAgree: the same booster saved as JSON and as UBJSON scores identically (a
// metamorphic check beside the fixtures), on random vectors as well.
func TestFormatsAgree(t *testing.T) {
	js, err := LoadFile("testdata/models/xgb_binary.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	ub, err := LoadFile("testdata/models/xgb_binary_ubj.ubj.gz")
	if err != nil {
		t.Fatal(err)
	}
	sj, _ := js.Bind(js.FeatureNames())
	su, _ := ub.Bind(js.FeatureNames())
	rng := rand.New(rand.NewPCG(4, 5))
	x := make([]float64, js.NumFeatures())
	a, b := make([]float64, js.ContributionsLen()), make([]float64, js.ContributionsLen())
	for i := 0; i < 500; i++ {
		for j := range x {
			x[j] = rng.NormFloat64() * 100
		}
		sj.Contributions(x, a)
		su.Contributions(x, b)
		if !slices.Equal(a, b) {
			t.Fatalf("vector %d: JSON %v, UBJSON %v", i, a, b)
		}
	}
}

// FuzzLoad: no model file makes Load, Bind, Predict or Contributions panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(tinyLGB))
	f.Add([]byte(tinyLGBCat))
	f.Add(fixtureBytes(f, "xgb_binary_ubj.ubj.gz"))
	// The JSON model cut to its first two trees, so that mutations are cheap.
	var doc map[string]any
	if err := json.Unmarshal(fixtureBytes(f, "xgb_binary.json.gz"), &doc); err != nil {
		f.Fatal(err)
	}
	gb := at(doc, "learner", "gradient_booster", "model").(map[string]any)
	gb["trees"] = gb["trees"].([]any)[:2]
	gb["tree_info"] = gb["tree_info"].([]any)[:2]
	gb["iteration_indptr"] = []any{0, 1, 2}
	gb["gbtree_model_param"].(map[string]any)["num_trees"] = "2"
	delete(learner(doc)["attributes"].(map[string]any), "best_iteration")
	small, _ := json.Marshal(doc)
	if _, err := Load(bytes.NewReader(small)); err != nil {
		f.Fatalf("seed: %v", err)
	}
	f.Add(small)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load(bytes.NewReader(data))
		if err != nil {
			return
		}
		s, err := m.Bind(m.FeatureNames())
		if err != nil {
			t.Fatalf("Bind to the model's own names: %v", err)
		}
		out := make([]float64, m.Outputs())
		contrib := make([]float64, m.ContributionsLen())
		for _, v := range []float64{0, 1, -1, 0.5, math.NaN(), math.Inf(1), 1e300} {
			x := make([]float64, m.NumFeatures())
			for i := range x {
				x[i] = v
			}
			s.Predict(x, out)
			s.Contributions(x, contrib)
			m.TopK(contrib, 0, 3, nil)
		}
	})
}

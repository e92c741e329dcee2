package gbdt

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fixtureBytes(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata/models", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := readModel(bytes.NewReader(raw), MaxModelBytes)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// xgbDoc is the xgb_binary model as a generic JSON document, for tests that break one field.
func xgbDoc(t testing.TB) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(fixtureBytes(t, "xgb_binary.json.gz"), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// at walks a path of object keys and array indices (as strings of digits) in a JSON document.
func at(doc any, path ...string) any {
	for _, p := range path {
		switch d := doc.(type) {
		case map[string]any:
			doc = d[p]
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			doc = d[i]
		}
	}
	return doc
}

func learner(doc map[string]any) map[string]any { return doc["learner"].(map[string]any) }
func tree0(doc map[string]any) map[string]any {
	return at(doc, "learner", "gradient_booster", "model", "trees", "0").(map[string]any)
}

func loadDoc(t testing.TB, doc any) (*Model, error) {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return Load(bytes.NewReader(b))
}

// tinyLGB is a hand-written LightGBM model of two regression trees: one split on "a" (NaN
// missing type, default left), and a constant tree.
const tinyLGB = `tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=1
objective=regression
feature_names=a b
feature_infos=[0:10] [0:1]
tree_sizes=1 1

Tree=0
num_leaves=2
num_cat=0
split_feature=0
split_gain=1
threshold=5
decision_type=10
left_child=-1
right_child=-2
leaf_value=1.5 -2.5
leaf_weight=3 1
leaf_count=3 1
internal_value=0
internal_weight=4
internal_count=4
is_linear=0
shrinkage=1

Tree=1
num_leaves=1
num_cat=0
split_feature=
split_gain=
threshold=
decision_type=
left_child=
right_child=
leaf_value=0.25
leaf_weight=
leaf_count=
internal_value=
internal_weight=
internal_count=
is_linear=0
shrinkage=1


end of trees

feature_importances:
a=1
`

func TestTinyLightGBM(t *testing.T) {
	m, err := Load(strings.NewReader(tinyLGB))
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Bind([]string{"b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, 1)
	for _, tc := range []struct{ a, want float64 }{
		{5, 1.5 + 0.25},               // x <= threshold goes left
		{math.Nextafter(5, 6), -2.25}, // just above goes right
		{math.NaN(), 1.75},            // NaN: default left
		{1e-40, 1.75},                 // read as 0
	} {
		s.Predict([]float64{0, tc.a}, out)
		if out[0] != tc.want {
			t.Errorf("a=%v: %v, want %v", tc.a, out[0], tc.want)
		}
	}
	// SHAP by hand: the split's expected value is (3*1.5 + 1*-2.5)/4 = 0.5; a=10 goes right, so
	// a contributes -2.5-0.5 = -3, and the bias is 0.5 + 0.25.
	c := make([]float64, m.ContributionsLen())
	s.Contributions([]float64{0, 10}, c)
	if want := []float64{-3, 0, 0.75}; c[0] != want[0] || c[1] != want[1] || c[2] != want[2] {
		t.Errorf("contributions %v, want %v", c, want)
	}
}

func TestLoadDetectsFormats(t *testing.T) {
	for _, tc := range []struct{ file, format string }{
		{"xgb_binary.json.gz", "xgboost-json"},
		{"xgb_binary_ubj.ubj.gz", "xgboost-ubjson"},
		{"lgb_binary.txt.gz", "lightgbm-text"},
	} {
		// Both gzip'd and plain.
		for _, plain := range []bool{false, true} {
			var r io.Reader
			if plain {
				r = bytes.NewReader(fixtureBytes(t, tc.file))
			} else {
				f, err := os.Open(filepath.Join("testdata/models", tc.file))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				r = f
			}
			m, err := Load(r)
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			if m.Format() != tc.format {
				t.Errorf("%s: format %s, want %s", tc.file, m.Format(), tc.format)
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	lgb := func(from, to string) string {
		if !strings.Contains(tinyLGB, from) {
			t.Fatalf("tinyLGB has no %q", from)
		}
		return strings.Replace(tinyLGB, from, to, 1)
	}
	type edit func(map[string]any)
	xgb := func(e edit) string {
		doc := xgbDoc(t)
		e(doc)
		b, _ := json.Marshal(doc)
		return string(b)
	}
	cases := []struct {
		name string
		in   string
		want string
		is   error
	}{
		{"empty", "", "", ErrFormat},
		{"text", "hello", "", ErrFormat},
		{"json but not xgboost", `{"a":1}`, "no version", nil},
		{"broken json", `{"learner": [`, "unexpected end of JSON input", nil},
		{"broken ubjson", "{U\x07learnerZ", "ubjson", nil},
		{"truncated gzip", string(gz([]byte(tinyLGB))[:20]), "gzip", nil},

		{"xgb dart", xgb(func(d map[string]any) { at(d, "learner", "gradient_booster").(map[string]any)["name"] = "dart" }), `booster "dart"`, ErrUnsupported},
		{"xgb objective", xgb(func(d map[string]any) { at(d, "learner", "objective").(map[string]any)["name"] = "rank:ndcg" }), `objective "rank:ndcg"`, ErrUnsupported},
		{"xgb multi-target", xgb(func(d map[string]any) { at(d, "learner", "learner_model_param").(map[string]any)["num_target"] = "2" }), "multi-target", ErrUnsupported},
		{"xgb vector leaf", xgb(func(d map[string]any) { tree0(d)["tree_param"].(map[string]any)["size_leaf_vector"] = "3" }), "vector-leaf", ErrUnsupported},
		{"xgb num_feature", xgb(func(d map[string]any) { at(d, "learner", "learner_model_param").(map[string]any)["num_feature"] = "x" }), `num_feature "x"`, nil},
		{"xgb base_score", xgb(func(d map[string]any) {
			at(d, "learner", "learner_model_param").(map[string]any)["base_score"] = "[1,2"
		}), "base_score", nil},
		{"xgb base_score length", xgb(func(d map[string]any) {
			at(d, "learner", "learner_model_param").(map[string]any)["base_score"] = "[0.1,0.2]"
		}), "2 values for 1 outputs", nil},
		{"xgb feature names", xgb(func(d map[string]any) { learner(d)["feature_names"] = []any{"a"} }), "1 feature names", nil},
		{"xgb duplicate feature", xgb(func(d map[string]any) {
			n := learner(d)["feature_names"].([]any)
			n[1] = n[0]
		}), "both named", nil},
		{"xgb feature type", xgb(func(d map[string]any) { learner(d)["feature_types"].([]any)[0] = "z" }), `type "z"`, nil},
		{"xgb best_iteration", xgb(func(d map[string]any) { learner(d)["attributes"].(map[string]any)["best_iteration"] = "99" }), "best_iteration", nil},
		{"xgb tree_info", xgb(func(d map[string]any) {
			at(d, "learner", "gradient_booster", "model").(map[string]any)["tree_info"].([]any)[0] = 3
		}), "tree_info 3", nil},
		{"xgb num_trees", xgb(func(d map[string]any) {
			at(d, "learner", "gradient_booster", "model", "gbtree_model_param").(map[string]any)["num_trees"] = "5"
		}), "num_trees 5", nil},
		{"xgb array length", xgb(func(d map[string]any) { tree0(d)["split_conditions"] = []any{1.0} }), "split_conditions has 1 entries", nil},
		{"xgb child out of range", xgb(func(d map[string]any) { tree0(d)["left_children"].([]any)[0] = 1000 }), "out of range", nil},
		{"xgb cycle", xgb(func(d map[string]any) {
			t := tree0(d)
			t["left_children"].([]any)[1], t["right_children"].([]any)[1] = 0, 2
		}), "reached twice", nil},
		{"xgb feature out of range", xgb(func(d map[string]any) { tree0(d)["split_indices"].([]any)[0] = 30 }), "feature 30", nil},
		{"xgb category out of range", xgb(func(d map[string]any) {
			t := tree0(d)
			t["split_type"].([]any)[0] = 1
			t["categories_nodes"], t["categories_segments"], t["categories_sizes"], t["categories"] = []any{0}, []any{0}, []any{1}, []any{1 << 24}
		}), "category 16777216", nil},
		{"xgb categorical without set", xgb(func(d map[string]any) { tree0(d)["split_type"].([]any)[0] = 1 }), "without categories", nil},
		{"xgb category segment", xgb(func(d map[string]any) {
			t := tree0(d)
			t["categories_nodes"], t["categories_segments"], t["categories_sizes"], t["categories"] = []any{0}, []any{0}, []any{5}, []any{1}
		}), "segment", nil},

		{"lgb truncated", tinyLGB[:strings.Index(tinyLGB, "Tree=1")], `no "end of trees"`, nil},
		{"lgb version", lgb("version=v4", "version=v9"), "version", nil},
		{"lgb objective", lgb("objective=regression", "objective=lambdarank"), `objective "lambdarank"`, ErrUnsupported},
		{"lgb objective option", lgb("objective=regression", "objective=regression sqrt"), `option "sqrt"`, ErrUnsupported},
		{"lgb average_output", lgb("tree_sizes", "average_output\ntree_sizes"), "average_output", ErrUnsupported},
		{"lgb linear tree", lgb("is_linear=0", "is_linear=1"), "linear trees", ErrUnsupported},
		{"lgb tree order", lgb("Tree=1", "Tree=7"), `"Tree=7", want "Tree=1"`, nil},
		{"lgb feature names", lgb("feature_names=a b", "feature_names=a"), "1 feature_names", nil},
		{"lgb duplicate key", lgb("num_cat=0", "num_cat=0\nnum_cat=0"), "given twice", nil},
		{"lgb leaf count", lgb("leaf_value=1.5 -2.5", "leaf_value=1.5"), "leaf_value has 1 values, want 2", nil},
		{"lgb bad number", lgb("threshold=5", "threshold=five"), `"five" is not a number`, nil},
		{"lgb child out of range", lgb("right_child=-2", "right_child=-3"), "leaf child -3 out of range", nil},
		{"lgb split feature", lgb("split_feature=0", "split_feature=2"), "feature 2", nil},
		{"lgb decision type", lgb("decision_type=10", "decision_type=14"), "missing type 3", nil},
		{"lgb categorical index", lgb("decision_type=10", "decision_type=1"), "category set 5 of 0", nil},
		{"lgb not key=value", lgb("is_linear=0", "garbage"), "not key=value", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tc.in))
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("got %v, want errors.Is %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestReadModelLimit(t *testing.T) {
	if _, err := readModel(strings.NewReader(strings.Repeat("x", 101)), 100); err == nil || !strings.Contains(err.Error(), "larger than 100 bytes") {
		t.Errorf("plain: %v", err)
	}
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(bytes.Repeat([]byte("x"), 1000)) // 1000 bytes inflated from a few dozen
	w.Close()
	if _, err := readModel(&buf, 100); err == nil || !strings.Contains(err.Error(), "larger than 100 bytes (gzip)") {
		t.Errorf("gzip: %v", err)
	}
}

func TestBindErrors(t *testing.T) {
	m, err := Load(strings.NewReader(tinyLGB))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Bind([]string{"c"})
	var mf *MissingFeaturesError
	if !errors.As(err, &mf) || strings.Join(mf.Missing, ",") != "a,b" {
		t.Fatalf("got %v, want a MissingFeaturesError for a and b", err)
	}
	if want := "gbdt: the model needs 2 feature(s) the pipeline does not compute: a, b"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if _, err := m.Bind([]string{"a", "b", "a"}); err == nil || !strings.Contains(err.Error(), `names "a" more than once`) {
		t.Errorf("duplicate: %v", err)
	}
	// A duplicate the model does not use is harmless.
	if _, err := m.Bind([]string{"a", "b", "x", "x"}); err != nil {
		t.Errorf("unused duplicate: %v", err)
	}
}

func TestLengthPanics(t *testing.T) {
	m, err := Load(strings.NewReader(tinyLGB))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := m.Bind([]string{"a", "b"})
	for name, f := range map[string]func(){
		"short vector":   func() { s.Predict([]float64{1}, make([]float64, 1)) },
		"short output":   func() { s.Predict([]float64{1, 2}, nil) },
		"contrib output": func() { s.Contributions([]float64{1, 2}, make([]float64, 2)) },
		"topk output":    func() { m.TopK(make([]float64, 3), 1, 1, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

// TestInfiniteThresholds: LightGBM's x <= +Inf takes +Inf left, its x <= MaxFloat64 does not;
// the bare-comparison path reads +Inf as MaxFloat64 only when that changes no decision.
func TestInfiniteThresholds(t *testing.T) {
	for _, tc := range []struct {
		threshold  string
		simple     bool
		inf, large float64 // predictions for x = +Inf and x = MaxFloat64
	}{
		{"inf", true, 1.75, 1.75},
		{"1.7976931348623157e+308", false, -2.25, 1.75},
	} {
		m, err := Load(strings.NewReader(strings.Replace(tinyLGB, "threshold=5", "threshold="+tc.threshold, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if m.f64.simple != tc.simple {
			t.Errorf("threshold %s: simple %v, want %v", tc.threshold, m.f64.simple, tc.simple)
		}
		s, _ := m.Bind([]string{"a", "b"})
		out := make([]float64, 1)
		for x, want := range map[float64]float64{math.Inf(1): tc.inf, math.MaxFloat64: tc.large, 0: 1.75} {
			s.Predict([]float64{x, 0}, out)
			if out[0] != want {
				t.Errorf("threshold %s, x=%v: %v, want %v", tc.threshold, x, out[0], want)
			}
		}
	}
}

package gbdt

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Library is the library a model was trained with.
type Library uint8

const (
	XGBoost Library = iota + 1
	LightGBM
)

func (l Library) String() string {
	switch l {
	case XGBoost:
		return "xgboost"
	case LightGBM:
		return "lightgbm"
	}
	return fmt.Sprintf("Library(%d)", uint8(l))
}

// Task is what a model predicts, which fixes the link from margin to prediction.
type Task uint8

const (
	// Binary: one output, the probability of the positive class (sigmoid of the margin).
	Binary Task = iota + 1
	// Regression: one output, the margin itself.
	Regression
	// Multiclass: one output per class, the class probabilities (softmax of the margins).
	Multiclass
)

func (t Task) String() string {
	switch t {
	case Binary:
		return "binary"
	case Regression:
		return "regression"
	case Multiclass:
		return "multiclass"
	}
	return fmt.Sprintf("Task(%d)", uint8(t))
}

// Feature is one input of a model, as its file names it.
type Feature struct {
	Name string
	// Categorical features take a category code (an integer, the index of the category in the
	// training data's categories, as pandas' cat.codes); a code outside the split's set, negative
	// or not a number follows the library's rule for unseen categories.
	Categorical bool
}

// Limits on what a model file may make Load do. A file over them is refused with an error that
// names the limit; real models are far below every one.
const (
	// MaxModelBytes is the largest model file, after gzip decompression: 512 MiB.
	MaxModelBytes = 512 << 20
	maxNodes      = 1 << 26 // nodes in all trees together
	maxTrees      = 1 << 20
	maxFeatures   = 1 << 20
	maxOutputs    = 1 << 12
	// maxTreeDepth bounds TreeSHAP's recursion and path memory ((d+2)²/2 elements).
	maxTreeDepth   = 256
	maxBitsetWords = 1 << 24 // 64 MiB of category bitsets
)

var (
	// ErrFormat: the input is none of the formats Load reads.
	ErrFormat = errors.New("gbdt: unknown model format (want XGBoost JSON or UBJSON, or a LightGBM text model)")
	// ErrUnsupported: a valid model that uses something this package does not score (an
	// objective, a booster, linear trees, ...). The message names it.
	ErrUnsupported = errors.New("gbdt: unsupported model")
)

// Model is a loaded tree ensemble: immutable, safe for concurrent use. Score with a Scorer from
// Bind.
type Model struct {
	library   Library
	format    string
	task      Task
	objective string
	features  []Feature
	outputs   int
	ntrees    int
	// Exactly one of f32 (XGBoost) and f64 (LightGBM) is set.
	f32 *forest[float32]
	f64 *forest[float64]
	// best is XGBoost's best_iteration attribute (-1 when absent); only iterations up to it are
	// in the forest.
	best       int
	iterations int
	// sigmoid is LightGBM's binary sigmoid parameter: p = 1/(1+exp(-sigmoid*margin)).
	sigmoid float64
}

// Library returns the library the model was trained with.
func (m *Model) Library() Library { return m.library }

// Format returns the file format: "xgboost-json", "xgboost-ubjson" or "lightgbm-text".
func (m *Model) Format() string { return m.format }

// Task returns what the model predicts.
func (m *Model) Task() Task { return m.task }

// Objective returns the objective as the model file writes it ("binary:logistic", "multiclass", ...).
func (m *Model) Objective() string { return m.objective }

// Outputs returns the number of values Predict writes: the number of classes for Multiclass,
// else 1.
func (m *Model) Outputs() int { return m.outputs }

// NumFeatures returns the number of model features.
func (m *Model) NumFeatures() int { return len(m.features) }

// FeatureNames returns the model's feature names in model order (a copy).
func (m *Model) FeatureNames() []string {
	names := make([]string, len(m.features))
	for i, f := range m.features {
		names[i] = f.Name
	}
	return names
}

// Features returns the model's features in model order (a copy).
func (m *Model) Features() []Feature { return append([]Feature(nil), m.features...) }

// NumTrees returns the number of trees scored (for XGBoost with best_iteration, the trees up to it).
func (m *Model) NumTrees() int { return m.ntrees }

// Iterations returns the number of boosting iterations scored.
func (m *Model) Iterations() int { return m.iterations }

// BestIteration returns XGBoost's best_iteration attribute, or -1 when the model has none.
func (m *Model) BestIteration() int { return m.best }

// LoadFile loads a model from a file; see Load.
func LoadFile(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gbdt: %w", err)
	}
	defer f.Close()
	m, err := Load(f)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return m, nil
}

// Load reads a model, detecting its format: XGBoost JSON or UBJSON (as Booster.save_model writes
// them; gbtree boosters only), or a LightGBM text model (Booster.save_model / model_to_string),
// each optionally gzip'd. The input is hostile until proven otherwise: a malformed or unsupported
// file gives an error, never a panic, and what Load allocates is bounded by MaxModelBytes and the
// limits documented in the package doc.
func Load(r io.Reader) (*Model, error) {
	data, err := readModel(r, MaxModelBytes)
	if err != nil {
		return nil, err
	}
	switch detect(data) {
	case "xgboost-json":
		return loadXGBoost(data, false)
	case "xgboost-ubjson":
		return loadXGBoost(data, true)
	case "lightgbm-text":
		return loadLightGBM(data)
	}
	return nil, ErrFormat
}

// readModel reads at most limit bytes, gunzipping a gzip'd file (to at most limit bytes too).
func readModel(r io.Reader, limit int) ([]byte, error) {
	data, err := readCapped(r, limit)
	if err != nil {
		return nil, err
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("gbdt: gzip: %w", err)
		}
		if data, err = readCapped(zr, limit); err != nil {
			return nil, fmt.Errorf("%w (gzip)", err)
		}
	}
	return data, nil
}

func readCapped(r io.Reader, limit int) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(bufio.NewReader(r), int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("gbdt: read model: %w", err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("gbdt: model file larger than %d bytes", limit)
	}
	return data, nil
}

// detect tells the formats apart by their first bytes: JSON and UBJSON both open an object with
// '{', but UBJSON's first key starts with a length marker, JSON's with a quote.
func detect(data []byte) string {
	s := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(s) >= 2 && s[0] == '{' && (s[1] == '"' || s[1] == ' ' || s[1] == '\t' || s[1] == '\r' || s[1] == '\n'):
		return "xgboost-json"
	case len(data) >= 2 && data[0] == '{' && strings.IndexByte("iUIlL#$N", data[1]) >= 0:
		return "xgboost-ubjson"
	case bytes.HasPrefix(s, []byte("tree\n")) || bytes.HasPrefix(s, []byte("tree\r\n")):
		return "lightgbm-text"
	}
	return ""
}

func checkFeatureNames(features []Feature) error {
	seen := make(map[string]int, len(features))
	for i, f := range features {
		if f.Name == "" {
			return fmt.Errorf("gbdt: feature %d has an empty name", i)
		}
		if j, ok := seen[f.Name]; ok {
			return fmt.Errorf("gbdt: features %d and %d are both named %q", j, i, f.Name)
		}
		seen[f.Name] = i
	}
	return nil
}

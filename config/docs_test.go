package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// yamlBlock is a ```yaml block of a Markdown file.
type yamlBlock struct {
	file string
	line int
	text string
}

var fence = regexp.MustCompile("(?m)^```yaml\n((?s:.*?))^```")

// docYAMLBlocks returns every YAML block of README.md and docs/*.md.
func docYAMLBlocks(t *testing.T) []yamlBlock {
	t.Helper()
	files, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []yamlBlock
	for _, f := range append([]string{"../README.md"}, files...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fence.FindAllSubmatchIndex(b, -1) {
			out = append(out, yamlBlock{
				file: strings.TrimPrefix(f, "../"),
				line: 1 + strings.Count(string(b[:m[0]]), "\n"),
				text: string(b[m[2]:m[3]]),
			})
		}
	}
	return out
}

// overlay merges fragment's mappings into base, key by key; other values replace base's.
func overlay(base, fragment map[string]any) {
	for k, v := range fragment {
		if fm, ok := v.(map[string]any); ok {
			if bm, ok := base[k].(map[string]any); ok {
				overlay(bm, fm)
				continue
			}
		}
		base[k] = v
	}
}

// TestDocsYAMLBlocksAreValid: every YAML block in the README and docs/ is a valid config. A block
// with an app key is a whole pipeline and must compile as it is; any other block is a fragment,
// laid over the example pipeline (configs/fraud-pipeline.yaml), and must compile there, except that
// the files it names (certificates, secrets) exist only on the reader's machine.
func TestDocsYAMLBlocksAreValid(t *testing.T) {
	blocks := docYAMLBlocks(t)
	if len(blocks) < 2 {
		t.Fatalf("found %d YAML blocks in README.md and docs/; the extraction is broken", len(blocks))
	}
	baseText, err := os.ReadFile("../configs/fraud-pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KAFKA_BROKERS", "127.0.0.1:9092")
	for _, b := range blocks {
		where := b.file + ":" + strconv.Itoa(b.line)
		var doc any
		if err := yaml.Unmarshal([]byte(b.text), &doc); err != nil {
			t.Errorf("%s: not YAML: %v", where, err)
			continue
		}
		frag, ok := doc.(map[string]any)
		if !ok || !streamdKeys(frag) {
			t.Logf("%s: not a streamd config (a Prometheus or Kubernetes snippet?); skipped", where)
			continue
		}
		text := []byte(b.text)
		whole := frag["app"] != nil
		if !whole {
			var base map[string]any
			if err := yaml.Unmarshal(baseText, &base); err != nil {
				t.Fatal(err)
			}
			overlay(base, frag)
			if text, err = yaml.Marshal(base); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(t.TempDir(), "pipeline.yaml")
		if err := os.WriteFile(path, text, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err == nil {
			_, err = cfg.Pipeline()
		}
		if err != nil && !whole && onlyMissingFiles(err) {
			t.Logf("%s: a fragment that names files of the reader's machine: %v", where, err)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", where, err, b.text)
		}
	}
}

// onlyMissingFiles reports whether every problem in err is a file that does not exist.
func onlyMissingFiles(err error) bool {
	var list interface{ Unwrap() []error }
	if errors.As(err, &list) {
		for _, e := range list.Unwrap() {
			if !onlyMissingFiles(e) {
				return false
			}
		}
		return len(list.Unwrap()) > 0
	}
	return errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "no such file or directory")
}

// streamdKeys reports whether every top-level key of m is a top-level key of streamd's config.
func streamdKeys(m map[string]any) bool {
	known := map[string]bool{}
	ct := reflect.TypeOf(Config{})
	for i := range ct.NumField() {
		if tag := strings.Split(ct.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" {
			known[tag] = true
		}
	}
	for k := range m {
		if !known[k] {
			return false
		}
	}
	return len(m) > 0
}

package online_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/streamd/streamd/online"
)

// TestTreeDecodesV1State: a hoeffding_tree state of format 1 (written before leaves kept obs:
// testdata/tree_v1.state, the first 2,000 rows of sea.csv.gz at GracePeriod 50, Tau 0.2, 15 nodes)
// decodes, and predicts what the learner that wrote it predicted on the next 200 rows
// (testdata/tree_v1.predictions). (The old code broke a tie between its majority class and naive
// Bayes the other way; no leaf of the fixture is at a tie, so every prediction must agree.)
func TestTreeDecodesV1State(t *testing.T) {
	state, err := os.ReadFile("testdata/tree_v1.state")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/tree_v1.predictions")
	if err != nil {
		t.Fatal(err)
	}
	l, err := online.Decode(state)
	if err != nil {
		t.Fatal(err)
	}
	if n := l.(*online.Tree).Nodes(); n != 15 {
		t.Errorf("decoded tree has %d nodes, want 15", n)
	}
	xs, _ := loadCSV(t, "sea.csv.gz")
	lines := strings.Split(strings.TrimSpace(string(want)), "\n")
	same := 0
	for k, line := range lines {
		var v online.Vector
		for j, r := range xs[2000+k] {
			v = append(v, online.Feature{Index: uint32(j), Value: r})
		}
		p, c := l.Predict(v, nil)
		if fmt.Sprintf("%x %d", p, c) == line {
			same++
		}
	}
	if same != len(lines) {
		t.Errorf("only %d of %d predictions identical to the writer's", same, len(lines))
	}
	// And it re-encodes in the current format, which decodes to the same predictions.
	again, err := online.Decode(l.AppendState(nil))
	if err != nil {
		t.Fatal(err)
	}
	for k := range lines {
		var v online.Vector
		for j, r := range xs[2000+k] {
			v = append(v, online.Feature{Index: uint32(j), Value: r})
		}
		p1, c1 := l.Predict(v, nil)
		p2, c2 := again.Predict(v, nil)
		if p1 != p2 || c1 != c2 {
			t.Fatalf("row %d: %v/%d after re-encoding, %v/%d before", 2000+k, p2, c2, p1, c1)
		}
	}
}

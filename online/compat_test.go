package online_test

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamd/streamd/online"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestStateFormatStable: the state each learner writes after a fixed history hashes to what
// testdata/state.golden holds, which the code before learners became a registry wrote; so
// changelogs written before a refactor restore after it. Line 4 changed once, on purpose: the
// Hoeffding tree took River's split rules and its state format 2 (leaves keep obs); format 1
// states still restore, to the same predictions (TestTreeDecodesV1State).
func TestStateFormatStable(t *testing.T) {
	s := genStream(16, 800, 1<<10, noDrift)
	var b strings.Builder
	for i, spec := range smallSpecs() {
		l := train(t, spec, s, 0, len(s.X))
		st := l.AppendState(nil)
		sum := sha256.Sum256(st)
		fmt.Fprintf(&b, "%d %s %d %s\n", i, l.Spec().Kind(), len(st), hex.EncodeToString(sum[:]))
		if _, err := online.Decode(st); err != nil {
			t.Errorf("%s: %v", l.Spec().Kind(), err)
		}
	}
	path := filepath.Join("testdata", "state.golden")
	if *updateGolden {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("state encodings changed:\ngot\n%swant\n%s", b.String(), want)
	}
}

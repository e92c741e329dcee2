package online

import "github.com/streamd/streamd/online/internal/wire"

// kinds is the registry of learners, in the order messages list them. Adding a learner is a file
// (its Spec, its Learner and its kindInfo) plus its line here.
var kinds = []*kindInfo{ftrlKind, linearKind, softmaxKind, kmeansKind, treeKind, hstKind, treeRegKind, arfClassifierKind, arfRegressorKind}

// kindInfo describes one learner kind.
type kindInfo struct {
	name    string
	aliases []string // other names accepted in configs
	// code identifies the kind in encoded state; it is never reused nor changed.
	code uint64
	// zero returns the kind's empty spec.
	zero func() Spec
	// read decodes what the spec's appendParams wrote (Validate is called after it).
	read func(r *wire.Reader) Spec
	// layouts are the spec encodings a kind added later, each under its own code (never reused
	// either), so that the spec an old code reads keeps its meaning; a spec names the code it
	// writes with a layoutCode method.
	layouts []specLayout
}

type specLayout struct {
	code uint64
	read func(r *wire.Reader) Spec
}

func lookupKind(name string) *kindInfo {
	for _, k := range kinds {
		if k.name == name {
			return k
		}
		for _, a := range k.aliases {
			if a == name {
				return k
			}
		}
	}
	return nil
}

// Kinds returns the names of the learner kinds, in the registry's order.
func Kinds() []string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.name
	}
	return names
}

// ClassCounter is implemented by the specs of classifiers: NumClasses is the number of classes K,
// and a label is a class index 0..K-1.
type ClassCounter interface {
	NumClasses() int
}

// NumClasses implements ClassCounter.
func (s SoftmaxSpec) NumClasses() int { return s.Classes }

// NumClasses implements ClassCounter.
func (s TreeSpec) NumClasses() int { return s.Classes }

package model

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"unsafe"

	"github.com/streamd/streamd/internal/jsonscan"
	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
)

// String class labels.
//
// A classifier learns class indexes (binary: 0 and 1; multiclass: 0..K-1), but users label their
// events with names ("legit", "fraud", "chargeback"). A string label is turned into its index
// before the models see it, and every prediction names its class back by that name:
//
//   - declared classes (LabelSpec.Classes): class i is Classes[i], in every partition, so models
//     merged across partitions agree; a label not in the list is an unknown_label dead letter;
//   - learned classes (LabelSpec.LearnClasses): class i is the i-th distinct label this task has
//     seen, kept in the task's store (classesKey) so that it survives restarts and rewinds with the
//     cycle that learned it; past MaxClasses a new label is an unknown_label dead letter. The
//     order is per partition, which is why learned classes cannot be merged (the config refuses
//     models.merge_interval with them).
const classesKey = "c/classes"

// checkClasses checks the string-label settings against the models: only classifiers learn string
// labels, and each must have room for every class.
func checkClasses(spec *LabelSpec, rules []labelRule) []error {
	if len(spec.Classes) == 0 && !spec.LearnClasses {
		return nil
	}
	var errs []error
	if len(spec.Classes) > 0 && spec.LearnClasses {
		errs = append(errs, fmt.Errorf("model: string labels have declared classes or learn them, not both"))
	}
	seen := map[string]bool{}
	for _, c := range spec.Classes {
		if c == "" || seen[c] {
			errs = append(errs, fmt.Errorf("model: class %q is empty or repeated", c))
		}
		seen[c] = true
	}
	room := 0
	for _, r := range rules {
		k := r.classes
		switch r.task {
		case online.Binary:
			k = 2
		case online.Multiclass:
		default:
			errs = append(errs, fmt.Errorf("model: %s is a %s model; string labels need classifiers (binary or multiclass)", r.model, r.task))
			continue
		}
		if len(spec.Classes) > k {
			errs = append(errs, fmt.Errorf("model: %d classes declared, but %s has %d", len(spec.Classes), r.model, k))
		}
		if spec.MaxClasses > k {
			errs = append(errs, fmt.Errorf("model: max classes %d, but %s has %d", spec.MaxClasses, r.model, k))
		}
		if room == 0 || k < room {
			room = k
		}
	}
	if spec.LearnClasses && spec.MaxClasses == 0 {
		spec.MaxClasses = room
	}
	if spec.MaxClasses < 0 {
		errs = append(errs, fmt.Errorf("model: max classes %d is negative", spec.MaxClasses))
	}
	return errs
}

// stringLabels reports whether labels are class names.
func (o *Operator) stringLabels() bool { return o.classIdx != nil || o.spec.Labels.LearnClasses }

// label reads a label field: a class name for string labels, else a number or a bool
// (Operator.label).
func (p *processor) label(f *stream.Field, field string) (float64, bool, error) {
	o := p.op
	if f.Kind != stream.String || !o.stringLabels() {
		return o.label(f, field)
	}
	c, err := p.classOf(f.Str, field)
	if err != nil {
		return 0, false, err
	}
	y := float64(c)
	if err := o.checkLabel(y, field); err != nil {
		return 0, false, err
	}
	return y, true, nil
}

// classOf returns the class index of a string label, learning a new class when classes are
// learned and there is room.
func (p *processor) classOf(s []byte, field string) (int, error) {
	o := p.op
	name := unsafe.String(unsafe.SliceData(s), len(s))
	if o.classIdx != nil {
		if i, ok := o.classIdx[name]; ok {
			return i, nil
		}
		return 0, &stream.Rejection{Reason: stream.ReasonUnknownLabel, Field: field,
			Detail: fmt.Sprintf("label %s is not one of labels.classes", strconv.Quote(clipLabel(s)))}
	}
	if i, ok := p.classIdx[name]; ok {
		return i, nil
	}
	if len(s) == 0 {
		return 0, &stream.Rejection{Reason: stream.ReasonUnknownLabel, Field: field, Detail: "an empty label names no class"}
	}
	if max := o.spec.Labels.MaxClasses; len(p.classNames) >= max {
		return 0, &stream.Rejection{Reason: stream.ReasonUnknownLabel, Field: field,
			Detail: fmt.Sprintf("label %s would be class %d, but the models have room for %d (labels.max_classes); declare labels.classes or raise the models' classes",
				strconv.Quote(clipLabel(s)), len(p.classNames)+1, max)}
	}
	n := string(s)
	p.classIdx[n] = len(p.classNames)
	p.classNames = append(p.classNames, n)
	p.store.Set([]byte(classesKey), encodeClasses(nil, p.classNames))
	return len(p.classNames) - 1, nil
}

// clipLabel shortens a label quoted in a dead letter.
func clipLabel(s []byte) string {
	if len(s) > 64 {
		return string(s[:64]) + "..."
	}
	return string(s)
}

// loadClasses reads the learned classes from the store.
func (p *processor) loadClasses() error {
	p.classNames, p.classIdx = nil, nil
	if !p.op.spec.Labels.LearnClasses {
		return nil
	}
	p.classIdx = map[string]int{}
	v, ok, err := p.store.Get([]byte(classesKey))
	if err != nil || !ok {
		return err
	}
	names, err := decodeClasses(v)
	if err != nil {
		return err
	}
	for i, n := range names {
		p.classIdx[n] = i
	}
	p.classNames = names
	return nil
}

func encodeClasses(dst []byte, names []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, n := range names {
		dst = binary.AppendUvarint(dst, uint64(len(n)))
		dst = append(dst, n...)
	}
	return dst
}

func decodeClasses(v []byte) ([]string, error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)) {
		return nil, fmt.Errorf("%w: learned classes", errCorrupt)
	}
	v = v[k:]
	names := make([]string, 0, n)
	for range n {
		l, k := binary.Uvarint(v)
		if k <= 0 || l > uint64(len(v)-k) {
			return nil, fmt.Errorf("%w: learned classes", errCorrupt)
		}
		names = append(names, string(v[k:k+int(l)]))
		v = v[k+int(l):]
	}
	if len(v) != 0 {
		return nil, fmt.Errorf("%w: learned classes: %d trailing bytes", errCorrupt, len(v))
	}
	return names, nil
}

// appendLabel writes the user's label of class c of the champion: its name for string labels (null
// for a class no label has named yet), true or false for bool labels, else the class index.
func (p *processor) appendLabel(b []byte, c int) []byte {
	o := p.op
	switch {
	case o.classIdx != nil:
		if c >= 0 && c < len(o.spec.Labels.Classes) {
			return append(b, o.classJSON[c]...)
		}
		return append(b, "null"...)
	case o.spec.Labels.LearnClasses:
		if c >= 0 && c < len(p.classNames) {
			return jsonscan.AppendString(b, []byte(p.classNames[c]))
		}
		return append(b, "null"...)
	case o.spec.Labels.BoolLabels:
		if c == 1 {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	}
	return strconv.AppendInt(b, int64(c), 10)
}

package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window"
	"github.com/streamd/streamd/window/agg"
)

// State is where tasks keep their state.
type State struct {
	Dir       string   `yaml:"dir"`
	CacheSize ByteSize `yaml:"cache_size"`
	// StandbyReplicas is stream.Config.StandbyReplicas.
	StandbyReplicas int `yaml:"standby_replicas"`
}

// Window is one published window: keyed by the source's entity key, results to a topic.
type Window struct {
	Name            string   `yaml:"name"`
	Kind            string   `yaml:"kind"`
	Size            Duration `yaml:"size"`
	Advance         Duration `yaml:"advance"`
	Gap             Duration `yaml:"gap"`
	Resolution      Duration `yaml:"resolution"`
	AllowedLateness Duration `yaml:"allowed_lateness"`
	Emit            string   `yaml:"emit"`
	Aggs            []Agg    `yaml:"aggs"`
	Output          string   `yaml:"output"`
}

// Agg is one aggregation, written as `count`, `{sum: amount}`, `{p99: amount}`,
// `{distinct: merchant}`, `{quantile: amount, q: 0.75}`, optionally with `as: name`.
type Agg struct {
	Kind  agg.Kind
	Field string
	Q     float64
	As    string
	name  string // the written form, for messages
	// invalid: the item did not decode (its error is reported); validation skips it rather than
	// reporting what its zero value would mean.
	invalid bool
}

var quantileName = regexp.MustCompile(`^p([0-9]{1,2}(\.[0-9]+)?)$`)

func (a *Agg) parseNode(n *yaml.Node, text func(*yaml.Node) (string, error)) (err error) {
	defer func() { a.invalid = err != nil }()
	kind := func(s string) error {
		if s == "median" { // what pandas, SQL and Flink users write
			a.Kind, a.Q = agg.Quantile, 0.5
			return nil
		}
		if k, ok := agg.ParseKind(s); ok && k != agg.Quantile {
			a.Kind = k
			return nil
		}
		if m := quantileName.FindStringSubmatch(s); m != nil {
			q, _ := strconv.ParseFloat(m[1], 64)
			a.Kind, a.Q = agg.Quantile, q/100
			if a.Q <= 0 || a.Q >= 1 {
				return fmt.Errorf("%s: the quantile must be between p0 and p100, exclusive", s)
			}
			return nil
		}
		if s == "quantile" {
			a.Kind = agg.Quantile
			return nil
		}
		return fmt.Errorf("%q is not an aggregation (count, sum, mean, min, max, stddev, distinct, median, p50, p99, quantile)", s)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		s, err := text(n)
		if err != nil {
			return err
		}
		a.name = s
		if err := kind(s); err != nil {
			return err
		}
		if a.Kind != agg.Count {
			return fmt.Errorf("%s needs a field: write {%s: FIELD}", s, s)
		}
		return nil
	case yaml.MappingNode:
		seenKind := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			v, err := text(n.Content[i+1])
			if err != nil {
				return fmt.Errorf("%s: %v", k, err)
			}
			switch k {
			case "as":
				a.As = v
			case "q":
				q, err := strconv.ParseFloat(v, 64)
				if err != nil || q <= 0 || q >= 1 {
					return fmt.Errorf("q: %q is not a quantile in (0, 1)", v)
				}
				a.Q = q
			default:
				if seenKind {
					return fmt.Errorf("one aggregation per item: %q and %q", a.name, k)
				}
				seenKind = true
				a.name, a.Field = k, v
				if err := kind(k); err != nil {
					return err
				}
			}
		}
		if !seenKind {
			return fmt.Errorf("no aggregation in the item")
		}
		if a.Kind == agg.Quantile && a.Q == 0 {
			return fmt.Errorf("quantile needs q, e.g. {quantile: amount, q: 0.75}, or write {p75: amount}")
		}
		return nil
	}
	return fmt.Errorf("want an aggregation like count or {sum: amount}")
}

// OutputName is the aggregation's name in results: `as`, or kind_field (count, sum_amount, p99_amount).
func (a *Agg) OutputName() string {
	if a.As != "" {
		return a.As
	}
	if a.Kind == agg.Count {
		return "count"
	}
	k := a.name
	if k == "quantile" {
		k = "q" + strings.TrimPrefix(strconv.FormatFloat(a.Q, 'f', -1, 64), "0.")
	}
	return k + "_" + a.Field
}

// windowKind is what one window kind reads of a Window; validateWindows checks the config against
// it, so that adding a window kind (a file in window/) adds one line to windowKinds and nothing
// else here.
type windowKind struct {
	size, advance, gap, resolution bool
}

// windowKinds holds every kind of window.KindNames (TestWindowKindsMatch checks the two agree).
var windowKinds = map[string]windowKind{
	"tumbling": {size: true},
	"hopping":  {size: true, advance: true},
	"sliding":  {size: true, resolution: true},
	"session":  {gap: true},
}

// windowKindsWith lists, in window.KindNames order, the kinds that read a key.
func windowKindsWith(reads func(windowKind) bool) string {
	var names []string
	for _, n := range window.KindNames() {
		if reads(windowKinds[n]) {
			names = append(names, n)
		}
	}
	return orList(names)
}

// orList writes names as "a", "a or b", "a, b or c".
func orList(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// windowSpec compiles a window's config.
func (w *Window) spec() window.Spec {
	kind, _ := window.ParseKind(w.Kind)
	s := window.Spec{
		Name: w.Name, Kind: kind, Size: w.Size.D(), Advance: w.Advance.D(), Gap: w.Gap.D(),
		Resolution: w.Resolution.D(), AllowedLateness: w.AllowedLateness.D(), Output: w.Output,
	}
	if w.Emit == "update" {
		s.Emit = window.EmitUpdate
	}
	for _, a := range w.Aggs {
		s.Aggs = append(s.Aggs, window.Agg{Name: a.OutputName(), Kind: a.Kind, Field: a.Field, Q: a.Q})
	}
	return s
}

func (c *Config) validateWindows(v *validator) {
	names := map[string]bool{}
	for i, w := range c.Windows {
		key := fmt.Sprintf("windows[%d]", i)
		v.name(key+".name", w.Name, true)
		if names[w.Name] {
			v.bad(key+".name", "%q is used by two windows", w.Name)
		}
		names[w.Name] = true
		kind, known := windowKinds[w.Kind]
		if _, ok := window.ParseKind(w.Kind); !ok || !known {
			known = false
			v.bad(key+".kind", "%q: use %s", w.Kind, orList(window.KindNames()))
		}
		if known {
			if kind.size && w.Size <= 0 {
				v.bad(key+".size", "required for %s windows", w.Kind)
			}
			if kind.gap && w.Gap <= 0 {
				v.bad(key+".gap", "required for %s windows", w.Kind)
			}
			if !kind.gap && w.Gap != 0 {
				v.bad(key+".gap", "only %s windows have a gap", windowKindsWith(func(k windowKind) bool { return k.gap }))
			}
			if !kind.size && w.Size != 0 {
				if kind.gap {
					v.bad(key+".size", "%s windows have a gap, not a size", w.Kind)
				} else {
					v.bad(key+".size", "only %s windows have a size", windowKindsWith(func(k windowKind) bool { return k.size }))
				}
			}
		}
		if kind.advance && (w.Advance <= 0 || w.Advance > w.Size || (w.Size > 0 && w.Advance > 0 && w.Size%w.Advance != 0)) {
			v.bad(key+".advance", "%s windows need an advance that divides size (%s)", w.Kind, w.Size)
		}
		if !kind.advance && w.Advance != 0 {
			v.bad(key+".advance", "only %s windows advance", windowKindsWith(func(k windowKind) bool { return k.advance }))
		}
		if !kind.resolution && w.Resolution != 0 {
			v.bad(key+".resolution", "only %s windows have a resolution", windowKindsWith(func(k windowKind) bool { return k.resolution }))
		}
		if w.AllowedLateness < 0 {
			v.bad(key+".allowed_lateness", "%s is negative", w.AllowedLateness)
		}
		switch w.Emit {
		case "", "final", "update":
		default:
			v.bad(key+".emit", "%q: use final or update", w.Emit)
		}
		if len(w.Aggs) == 0 {
			v.bad(key+".aggs", "at least one aggregation")
		}
		aggNames := map[string]bool{}
		for j, a := range w.Aggs {
			akey := fmt.Sprintf("%s.aggs[%d]", key, j)
			if a.invalid {
				continue
			}
			if a.Kind != agg.Count {
				f, ok := c.fieldSpec(a.Field)
				switch {
				case !ok:
					v.bad(akey, "field %q is not declared in %s", a.Field, c.fieldsWhere())
				case a.Kind != agg.Distinct && f.Type != "number":
					v.bad(akey, "%s needs a number field; %q is a %s", a.Kind, a.Field, f.Type)
				}
			}
			if aggNames[a.OutputName()] {
				v.bad(akey, "two aggregations are named %q; rename one with as:", a.OutputName())
			}
			aggNames[a.OutputName()] = true
		}
		v.name(key+".output", w.Output, true)
		if w.Output == c.Source.Topic {
			v.bad(key+".output", "%q is the source topic", w.Output)
		}
	}
}

// windowOperators builds the window operators over the compiled source format.
func (c *Config) windowOperators(f stream.Format) ([]stream.Operator, error) {
	var ops []stream.Operator
	for _, w := range c.Windows {
		op, err := window.New(w.spec(), f)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

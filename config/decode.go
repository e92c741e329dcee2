package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// scalarParser is implemented by config types written as one scalar with units (durations, sizes).
type scalarParser interface {
	parseScalar(s string) error
}

// KeyError is a problem with one key of the config: Key is its dotted path ("kafka.commit_interval"),
// Line its line in the file (0 when unknown).
type KeyError struct {
	Key  string
	Line int
	Msg  string
}

func (e *KeyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s (line %d): %s", e.Key, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Key, e.Msg)
}

// decoder turns a YAML node tree into a config struct strictly: an unknown key, a wrong type or an
// unparseable value is an error that names its key, and every such error is collected rather than
// stopping at the first.
type decoder struct {
	errs []error
	env  func(string) (string, bool)
}

func (d *decoder) fail(key string, n *yaml.Node, format string, args ...any) {
	if key == "" {
		key = "the file" // the document itself is not a mapping
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &KeyError{Key: key, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var scalarParserType = reflect.TypeFor[scalarParser]()

// nodeParser is implemented by config types with a shape of their own (a scalar or a one-key
// mapping, like aggregations). parseNode gets the node with environment references unexpanded in
// keys, expanded in values through the text function, and returns the problems it found.
type nodeParser interface {
	parseNode(n *yaml.Node, text func(*yaml.Node) (string, error)) error
}

var nodeParserType = reflect.TypeFor[nodeParser]()

// kindParser is implemented by config types that are one of several structs, chosen by the value
// of their "kind" key (a model's learner). chooseKind gets that value ("" when the key is missing)
// and returns a pointer to the struct the mapping's other keys decode into, or nil when the kind is
// unknown: validation reports it, naming the kinds, and the other keys are not read.
type kindParser interface {
	chooseKind(kind string) any
}

var kindParserType = reflect.TypeFor[kindParser]()

func (d *decoder) decode(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an explicitly empty value keeps the default
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		if v.Type().Implements(scalarParserType) {
			d.scalar(path, n, v.Interface().(scalarParser))
			return
		}
		d.decode(path, n, v.Elem())
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(kindParserType) {
		d.kinded(path, n, v.Addr().Interface().(kindParser))
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeParserType) {
		text := func(n *yaml.Node) (string, error) {
			if n.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("want a single value, got %s", nodeKind(n))
			}
			return expandEnv(n.Value, d.env)
		}
		if err := v.Addr().Interface().(nodeParser).parseNode(n, text); err != nil {
			d.fail(path, n, "%v", err)
		}
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(scalarParserType) {
		d.scalar(path, n, v.Addr().Interface().(scalarParser))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(path, n, v)
	case reflect.Map:
		d.mapping(path, n, v)
	case reflect.Slice:
		d.sequence(path, n, v)
	case reflect.String:
		if s, ok := d.scalarText(path, n); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if s, ok := d.scalarText(path, n); ok {
			switch s {
			case "true":
				v.SetBool(true)
			case "false":
				v.SetBool(false)
			default:
				d.fail(path, n, "want true or false, got %q", s)
			}
		}
	case reflect.Int, reflect.Int16, reflect.Int32, reflect.Int64:
		if s, ok := d.scalarText(path, n); ok {
			i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, v.Type().Bits())
			if err != nil {
				d.fail(path, n, "want a whole number, got %q", s)
				return
			}
			v.SetInt(i)
		}
	case reflect.Float64:
		if s, ok := d.scalarText(path, n); ok {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				d.fail(path, n, "want a number, got %q", s)
				return
			}
			v.SetFloat(f)
		}
	default:
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path))
	}
}

func (d *decoder) scalar(path string, n *yaml.Node, p scalarParser) {
	s, ok := d.scalarText(path, n)
	if !ok {
		return
	}
	if err := p.parseScalar(s); err != nil {
		d.fail(path, n, "%v", err)
	}
}

// scalarText returns a scalar's text with ${VAR} references expanded.
func (d *decoder) scalarText(path string, n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, n, "want a single value, got %s", nodeKind(n))
		return "", false
	}
	s, err := expandEnv(n.Value, d.env)
	if err != nil {
		d.fail(path, n, "%v", err)
		return "", false
	}
	return s, true
}

func (d *decoder) structure(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, n, "want a mapping of keys, got %s", nodeKind(n))
		return
	}
	fields := map[string][]int{}
	var names []string
	// collect gathers a struct's keys; an embedded struct tagged ",inline" (a learner spec that
	// shares a block of keys with another) contributes its own keys at this level.
	var collect func(t reflect.Type, at []int)
	collect = func(t reflect.Type, at []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			parts := strings.Split(f.Tag.Get("yaml"), ",")
			idx := append(append([]int(nil), at...), i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct && slices.Contains(parts[1:], "inline") {
				collect(f.Type, idx)
				continue
			}
			if parts[0] == "" || parts[0] == "-" {
				continue
			}
			fields[parts[0]] = idx
			names = append(names, parts[0])
		}
	}
	collect(v.Type(), nil)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := join(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			msg := "unknown key"
			if s := suggest(k.Value, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				sort.Strings(names)
				msg += fmt.Sprintf(" (known keys here: %s)", strings.Join(names, ", "))
			}
			d.fail(key, k, "%s", msg)
			continue
		}
		if seen[k.Value] {
			d.fail(key, k, "given twice")
			continue
		}
		seen[k.Value] = true
		d.decode(key, val, v.FieldByIndex(idx))
	}
}

// kinded decodes a mapping whose "kind" key chooses the struct its other keys decode into.
func (d *decoder) kinded(path string, n *yaml.Node, p kindParser) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, n, "want a mapping of keys, got %s", nodeKind(n))
		p.chooseKind("")
		return
	}
	rest := *n
	rest.Content = nil
	kind, seen := "", false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Value != "kind" {
			rest.Content = append(rest.Content, k, val)
			continue
		}
		if seen {
			d.fail(join(path, k.Value), k, "given twice")
			continue
		}
		seen = true
		kind, _ = d.scalarText(join(path, k.Value), val)
	}
	if target := p.chooseKind(kind); target != nil {
		d.decode(path, &rest, reflect.ValueOf(target))
	}
}

func (d *decoder) mapping(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, n, "want a mapping, got %s", nodeKind(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := join(path, k.Value)
		if v.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			d.fail(key, k, "given twice")
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(key, val, elem)
		v.SetMapIndex(reflect.ValueOf(k.Value), elem)
	}
}

func (d *decoder) sequence(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		if v.Type().Elem().Kind() == reflect.String && n.Kind == yaml.ScalarNode {
			// A single string where a list is expected ("brokers: host:9092") is common and
			// unambiguous; a comma-separated list is what Kafka users write on command lines.
			s, ok := d.scalarText(path, n)
			if !ok {
				return
			}
			parts := strings.Split(s, ",")
			out := reflect.MakeSlice(v.Type(), 0, len(parts))
			for _, p := range parts {
				out = reflect.Append(out, reflect.ValueOf(strings.TrimSpace(p)).Convert(v.Type().Elem()))
			}
			v.Set(out)
			return
		}
		d.fail(path, n, "want a list, got %s", nodeKind(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(fmt.Sprintf("%s[%d]", path, i), item, out.Index(i))
	}
	v.Set(out)
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv replaces ${VAR} and ${VAR:-default} with the environment's values. An unset variable
// without a default is an error: silently reading "" would turn a missing secret into a confusing
// authentication failure later.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := envRef.FindStringSubmatch(m)
		if v, ok := lookup(sub[1]); ok && v != "" {
			return v
		}
		if sub[2] != "" {
			return sub[3]
		}
		missing = append(missing, sub[1])
		return ""
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} to give a default)", missing[0], missing[0])
	}
	return out, nil
}

// suggest returns the known name closest to a misspelt key, if one is within two edits.
func suggest(key string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if d := editDistance(key, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// parseYAML decodes data into cfg strictly. The returned error joins every KeyError found.
func parseYAML(data []byte, cfg any, env func(string) (string, bool)) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return &yamlError{explainYAMLError(data, err)}
	}
	if env == nil {
		env = os.LookupEnv
	}
	d := &decoder{env: env}
	if len(root.Content) == 0 {
		return &yamlError{errors.New("the file is empty")}
	}
	d.decode("", &root, reflect.ValueOf(cfg).Elem())
	return errors.Join(d.errs...)
}

// yamlError is a file that is not YAML at all; nothing past it can be checked.
type yamlError struct{ err error }

func (e *yamlError) Error() string { return "not valid YAML: " + e.err.Error() }

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// explainYAMLError turns the YAML parser's message into one a user can act on. A tab in the
// indentation is named as such (the parser says "found character that cannot start any token").
// The parser's "did not find expected ..." errors give the 0-based line where the mapping or list
// being read began, not the 1-based line of the problem, so the line is made 1-based and the
// message says it is where the block starts.
func explainYAMLError(data []byte, err error) error {
	for i, line := range strings.Split(string(data), "\n") {
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if strings.Contains(indent, "\t") {
			return fmt.Errorf("line %d: a tab in the indentation; YAML indents with spaces only", i+1)
		}
	}
	m := yamlErrLine.FindStringSubmatch(err.Error())
	if m == nil {
		return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	n, _ := strconv.Atoi(m[1])
	if strings.HasPrefix(m[2], "did not find expected") {
		return fmt.Errorf("line %d: %s: the mapping or list that starts on this line has a line below it that does not belong (check its indentation, and that brackets and quotes are closed)", n+1, m[2])
	}
	return fmt.Errorf("line %d: %s", n, m[2])
}
func (e *yamlError) Unwrap() error { return e.err }

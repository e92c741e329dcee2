package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/topicread"
	"github.com/streamd/streamd/stream"
)

// Formats of the files.
const (
	Parquet = "parquet"
	JSONL   = "jsonl"
)

// ErrBadOptions wraps every problem Options.Validate finds.
var ErrBadOptions = errors.New("export: bad options")

// Options configure one export.
type Options struct {
	// ClientOpts connect to the brokers (seed brokers, TLS, SASL).
	ClientOpts []kgo.Opt
	// Topic is the topic to export. Required.
	Topic string
	// Format is Parquet or JSONL. Default Parquet.
	Format string
	// Dir receives the files; it is created if missing. Required.
	Dir string
	// Roll is the period of event time each file covers: time.Hour or 24*time.Hour (the default).
	Roll time.Duration
	// Logger receives progress. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every bad field at once.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrBadOptions, fmt.Sprintf(format, args...)))
	}
	if o.Topic == "" {
		bad("a topic is required")
	}
	if o.Dir == "" {
		bad("an output directory is required")
	}
	if o.Format != "" && o.Format != Parquet && o.Format != JSONL {
		bad("format %q is not one of parquet, jsonl", o.Format)
	}
	if o.Roll != 0 && o.Roll != time.Hour && o.Roll != 24*time.Hour {
		bad("roll %s is not an hour or a day", o.Roll)
	}
	return errors.Join(errs...)
}

// File is one file an export wrote.
type File struct {
	Path    string
	Period  time.Time // the start of its period of event time
	Records int
}

// Summary is what an export did.
type Summary struct {
	Records int
	Files   []File
	// Columns are the Parquet columns with their types (nil for JSONL).
	Columns []Column
}

// Column is one column of the Parquet schema.
type Column struct {
	Name string
	Type string // BOOLEAN, INT64, TIMESTAMP(MILLIS), DOUBLE, STRING
}

// Run exports o.Topic into o.Dir (see the package doc).
func Run(ctx context.Context, o Options) (Summary, error) {
	if err := o.Validate(); err != nil {
		return Summary{}, err
	}
	if o.Format == "" {
		o.Format = Parquet
	}
	if o.Roll == 0 {
		o.Roll = 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cl, err := kgo.NewClient(o.ClientOpts...)
	if err != nil {
		return Summary{}, fmt.Errorf("export: kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return Summary{}, fmt.Errorf("export: %w", err)
	}
	read := func(f func(*kgo.Record) error) error {
		var ferr error
		err := topicread.Committed(ctx, o.ClientOpts, adm, o.Topic, func(r *kgo.Record) {
			if ferr == nil {
				ferr = f(r)
			}
		})
		if errors.Is(err, topicread.ErrNoTopic) {
			return fmt.Errorf("export: topic %s does not exist", o.Topic)
		}
		if err != nil {
			return fmt.Errorf("export: reading %s: %w", o.Topic, err)
		}
		return ferr
	}

	var sch *schema
	if o.Format == Parquet {
		inf := inference{}
		if err := read(func(r *kgo.Record) error {
			row, err := flatRecord(r)
			if err != nil {
				return err
			}
			inf.observe(row)
			return nil
		}); err != nil {
			return Summary{}, err
		}
		sch = inf.schema(o.Topic)
	}

	files := map[int64]*periodFile{}
	var sum Summary
	defer func() {
		for _, f := range files {
			f.abandon()
		}
	}()
	err = read(func(r *kgo.Record) error {
		period := eventTime(r) / o.Roll.Milliseconds()
		if eventTime(r) < 0 && eventTime(r)%o.Roll.Milliseconds() != 0 {
			period-- // floor
		}
		f := files[period]
		if f == nil {
			start := time.UnixMilli(period * o.Roll.Milliseconds()).UTC()
			layout := "2006-01-02"
			if o.Roll < 24*time.Hour {
				layout = "2006-01-02T15"
			}
			path := filepath.Join(o.Dir, o.Topic+"-"+start.Format(layout)+"."+o.Format)
			var err error
			if f, err = newPeriodFile(path, start, sch); err != nil {
				return err
			}
			files[period] = f
		}
		if err := f.write(r); err != nil {
			return fmt.Errorf("export: %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		sum.Records++
		return nil
	})
	if err != nil {
		return Summary{}, err
	}
	periods := make([]int64, 0, len(files))
	for p := range files {
		periods = append(periods, p)
	}
	sort.Slice(periods, func(i, j int) bool { return periods[i] < periods[j] })
	for _, p := range periods {
		f := files[p]
		if err := f.close(); err != nil {
			return Summary{}, err
		}
		delete(files, p)
		sum.Files = append(sum.Files, File{Path: f.path, Period: f.period, Records: f.records})
		o.Logger.Info("exported", "file", f.path, "records", f.records)
	}
	if sch != nil {
		sum.Columns = sch.columns
	}
	return sum, nil
}

// eventTime is a record's event time in Unix ms: the streamd-event-time header, else a top-level
// event_time number, else the record timestamp.
func eventTime(r *kgo.Record) int64 {
	for _, h := range r.Headers {
		if h.Key == stream.HeaderEventTime {
			if ms, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				return ms
			}
		}
	}
	var v struct {
		EventTime *json.Number `json:"event_time"`
	}
	if json.Unmarshal(r.Value, &v) == nil && v.EventTime != nil {
		if ms, err := v.EventTime.Int64(); err == nil {
			return ms
		}
	}
	return r.Timestamp.UnixMilli()
}

// periodFile is the file of one period, written under a temporary name.
type periodFile struct {
	path, tmp string
	period    time.Time
	records   int
	f         *os.File
	buf       *bufio.Writer
	sch       *schema
	pw        *parquet.Writer
	row       parquet.Row
}

func newPeriodFile(path string, period time.Time, sch *schema) (*periodFile, error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	pf := &periodFile{path: path, tmp: tmp, period: period, f: f, buf: bufio.NewWriterSize(f, 1<<20), sch: sch}
	if sch != nil {
		pf.pw = parquet.NewWriter(pf.buf, sch.s, parquet.Compression(&snappy.Codec{}), parquet.MaxRowsPerRowGroup(10_000))
		pf.row = make(parquet.Row, len(sch.columns))
	}
	return pf, nil
}

func (pf *periodFile) write(r *kgo.Record) error {
	pf.records++
	if pf.pw == nil {
		if !json.Valid(r.Value) {
			return errors.New("the value is not JSON")
		}
		if _, err := pf.buf.Write(r.Value); err != nil {
			return err
		}
		return pf.buf.WriteByte('\n')
	}
	flat, err := flatRecord(r)
	if err != nil {
		return err
	}
	pf.sch.fill(pf.row, flat)
	_, err = pf.pw.WriteRows([]parquet.Row{pf.row})
	return err
}

// close completes the file and gives it its name.
func (pf *periodFile) close() error {
	if pf.pw != nil {
		if err := pf.pw.Close(); err != nil {
			return fmt.Errorf("export: %s: %w", pf.path, err)
		}
	}
	if err := pf.buf.Flush(); err != nil {
		return fmt.Errorf("export: %s: %w", pf.path, err)
	}
	if err := pf.f.Close(); err != nil {
		return fmt.Errorf("export: %s: %w", pf.path, err)
	}
	pf.f = nil
	if err := os.Rename(pf.tmp, pf.path); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// abandon removes an unfinished file.
func (pf *periodFile) abandon() {
	if pf.f != nil {
		pf.f.Close()
		os.Remove(pf.tmp)
	}
}

// value kinds, in the order inference widens them.
type kind uint8

const (
	kNull kind = iota
	kBool
	kInt
	kFloat
	kString
)

// flatValue is one flattened field.
type flatValue struct {
	k kind
	b bool
	i int64
	f float64
	s string
}

// flatRecord flattens a record's JSON object value.
func flatRecord(r *kgo.Record) (map[string]flatValue, error) {
	d := json.NewDecoder(bytes.NewReader(r.Value))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("export: %s/%d@%d: the value is not JSON: %w", r.Topic, r.Partition, r.Offset, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("export: %s/%d@%d: the value is not a JSON object", r.Topic, r.Partition, r.Offset)
	}
	out := map[string]flatValue{}
	flatten(out, "", obj)
	return out, nil
}

func flatten(out map[string]flatValue, prefix string, obj map[string]any) {
	for k, v := range obj {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		switch x := v.(type) {
		case map[string]any:
			flatten(out, name, x)
		case []any:
			if named, ok := byName(x); ok {
				flatten(out, name, named)
				continue
			}
			b, _ := json.Marshal(x)
			out[name] = flatValue{k: kString, s: string(b)}
		case json.Number:
			if i, err := x.Int64(); err == nil && !strings.ContainsAny(x.String(), ".eE") {
				out[name] = flatValue{k: kInt, i: i, f: float64(i)}
			} else if f, err := x.Float64(); err == nil {
				out[name] = flatValue{k: kFloat, f: f}
			} else {
				out[name] = flatValue{k: kString, s: x.String()}
			}
		case string:
			out[name] = flatValue{k: kString, s: x}
		case bool:
			out[name] = flatValue{k: kBool, b: x}
		case nil:
			out[name] = flatValue{k: kNull}
		}
	}
}

// byName turns an array of objects that each have a distinct string "name" into an object by
// name (without the name field).
func byName(a []any) (map[string]any, bool) {
	if len(a) == 0 {
		return nil, false
	}
	out := map[string]any{}
	for _, e := range a {
		o, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		n, ok := o["name"].(string)
		if !ok || n == "" || out[n] != nil {
			return nil, false
		}
		rest := map[string]any{}
		for k, v := range o {
			if k != "name" {
				rest[k] = v
			}
		}
		out[n] = rest
	}
	return out, true
}

// inference is the widest kind seen per column.
type inference map[string]kind

func (inf inference) observe(row map[string]flatValue) {
	for name, v := range row {
		k, seen := inf[name]
		switch {
		case !seen:
			inf[name] = v.k
		case v.k == kNull || v.k == k:
		case k == kNull:
			inf[name] = v.k
		case (k == kInt && v.k == kFloat) || (k == kFloat && v.k == kInt):
			inf[name] = kFloat
		default:
			inf[name] = kString
		}
	}
}

// timeColumns are the top-level integer columns that are times in Unix ms.
var timeColumns = map[string]bool{"event_time": true, "label_time": true, "start": true, "end": true}

// schema is the Parquet schema of an export and how a flattened record fills a row of it.
type schema struct {
	s       *parquet.Schema
	columns []Column
	kinds   []kind
	index   map[string]int
}

func (inf inference) schema(topic string) *schema {
	g := parquet.Group{}
	types := map[string]string{}
	for name, k := range inf {
		var n parquet.Node
		switch k {
		case kBool:
			n, types[name] = parquet.Leaf(parquet.BooleanType), "BOOLEAN"
		case kInt:
			if timeColumns[name] {
				n, types[name] = parquet.Timestamp(parquet.Millisecond), "TIMESTAMP(MILLIS)"
			} else {
				n, types[name] = parquet.Int(64), "INT64"
			}
		case kFloat:
			n, types[name] = parquet.Leaf(parquet.DoubleType), "DOUBLE"
		default: // strings, mixes, and columns never seen but null
			n, types[name] = parquet.String(), "STRING"
		}
		g[name] = parquet.Optional(n)
	}
	sch := &schema{s: parquet.NewSchema(topic, g), index: map[string]int{}}
	sch.columns = make([]Column, len(g))
	sch.kinds = make([]kind, len(g))
	for name := range g {
		leaf, _ := sch.s.Lookup(name)
		sch.columns[leaf.ColumnIndex] = Column{Name: name, Type: types[name]}
		k := inf[name]
		if k == kNull {
			k = kString
		}
		sch.kinds[leaf.ColumnIndex] = k
		sch.index[name] = leaf.ColumnIndex
	}
	return sch
}

// fill writes the flattened record into row, in column order.
func (s *schema) fill(row parquet.Row, flat map[string]flatValue) {
	for i := range row {
		row[i] = parquet.NullValue().Level(0, 0, i)
	}
	for name, v := range flat {
		i, ok := s.index[name]
		if !ok || v.k == kNull {
			continue
		}
		var pv parquet.Value
		switch s.kinds[i] {
		case kBool:
			pv = parquet.BooleanValue(v.b)
		case kInt:
			pv = parquet.Int64Value(v.i)
		case kFloat:
			pv = parquet.DoubleValue(v.f)
		default:
			pv = parquet.ByteArrayValue([]byte(v.text()))
		}
		row[i] = pv.Level(0, 1, i)
	}
}

// text is the value written into a STRING column.
func (v flatValue) text() string {
	switch v.k {
	case kString:
		return v.s
	case kBool:
		return strconv.FormatBool(v.b)
	case kInt:
		return strconv.FormatInt(v.i, 10)
	case kFloat:
		if math.IsNaN(v.f) || math.IsInf(v.f, 0) {
			return ""
		}
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	}
	return ""
}

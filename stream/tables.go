package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/state/table"
)

// TableKind says how a table is held and joined.
type TableKind uint8

const (
	// GlobalTable: every instance holds every partition of the table's topic, and an event is
	// joined by the value of one of its fields (Table.Join), like Kafka Streams' GlobalKTable.
	GlobalTable TableKind = iota + 1
	// CoPartitionedTable: the table's topic is keyed by the entity key and has the source's
	// partition count; each task holds its own partition and joins an event by its key, like a
	// KTable.
	CoPartitionedTable
)

func (k TableKind) String() string {
	switch k {
	case GlobalTable:
		return "global"
	case CoPartitionedTable:
		return "co_partitioned"
	}
	return "unknown"
}

// Table declares a table that enriches the pipeline's events: a compacted topic whose record key is
// the row key and whose value is the row, materialized in Pebble (package state/table) and kept
// current. Its fields join the event's fields under NAME.FIELD (EnrichedFormat), so that features,
// windows and models read them as they read the event's own.
type Table struct {
	// Name names the table: its fields are NAME.FIELD, its lineage header streamd-table-NAME.
	// Letters, digits, '_' and '-'.
	Name string
	// Topic is the table's compacted topic. It must exist.
	Topic string
	Kind  TableKind
	// Join names the source field whose value is the row key of a global table (a string, or an
	// integer written in decimal). A co-partitioned table is joined by the entity key: Join is
	// empty.
	Join string
	// Format decodes and validates rows, as the source format does events (a JSONFormat whose
	// Fields are the table's fields, keyed by the record key, with Time.Format TimeKafka): a
	// row it rejects sends the event to the dead letters with the row's reason, and a field it
	// requires makes an event without a row a missing_field dead letter.
	Format Format
}

// EnrichedFormat is a source format with tables joined on: its fields are the source's, then each
// table's (Table.Format's FieldNames) named NAME.FIELD, in the order of Tables. Its decoder
// decodes the source record and leaves the table fields absent; the task fills them from the
// tables before the operators see the event (see the package documentation, Tables).
type EnrichedFormat struct {
	Source Format
	Tables []*Table

	inited bool
	nsrc   int
	names  []string
}

var tableNameRE = nameRE

// Init implements Format: it prepares the source's and the tables' formats and checks the tables,
// naming every problem.
func (f *EnrichedFormat) Init() error {
	if f.inited {
		return nil
	}
	if f.Source == nil {
		return fmt.Errorf("%w: an enriched format without a source format", ErrBadFormat)
	}
	if err := f.Source.Init(); err != nil {
		return err
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrBadFormat, fmt.Sprintf(format, args...)))
	}
	names := append([]string(nil), f.Source.FieldNames()...)
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	tableNames := map[string]bool{}
	for i, tb := range f.Tables {
		if tb == nil {
			bad("table %d is nil", i)
			continue
		}
		if !tableNameRE.MatchString(tb.Name) || strings.Contains(tb.Name, ".") {
			bad("table name %q: use letters, digits, '_' or '-'", tb.Name)
		}
		if tableNames[tb.Name] {
			bad("two tables are named %q", tb.Name)
		}
		tableNames[tb.Name] = true
		if !nameRE.MatchString(tb.Topic) {
			bad("table %q: topic %q is not a valid topic name", tb.Name, tb.Topic)
		}
		switch tb.Kind {
		case GlobalTable:
			if _, ok := f.Source.FieldIndex(tb.Join); !ok {
				bad("global table %q: join field %q is not a source field", tb.Name, tb.Join)
			}
		case CoPartitionedTable:
			if tb.Join != "" {
				bad("co-partitioned table %q is joined by the entity key: join %q must be empty", tb.Name, tb.Join)
			}
		default:
			bad("table %q has no kind (global or co-partitioned)", tb.Name)
		}
		if tb.Format == nil {
			bad("table %q has no format", tb.Name)
			continue
		}
		if err := tb.Format.Init(); err != nil {
			errs = append(errs, fmt.Errorf("table %q: %w", tb.Name, err))
			continue
		}
		for _, fn := range tb.Format.FieldNames() {
			n := tb.Name + "." + fn
			if seen[n] {
				bad("table %q: field %q is also a source field", tb.Name, n)
			}
			seen[n] = true
			names = append(names, n)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	f.nsrc, f.names, f.inited = len(f.Source.FieldNames()), names, true
	return nil
}

// FieldIndex implements Format.
func (f *EnrichedFormat) FieldIndex(name string) (int, bool) {
	for i, n := range f.FieldNames() {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// FieldNames implements Format.
func (f *EnrichedFormat) FieldNames() []string {
	if f.inited {
		return f.names
	}
	names := append([]string(nil), f.Source.FieldNames()...)
	for _, tb := range f.Tables {
		if tb == nil || tb.Format == nil {
			continue
		}
		for _, fn := range tb.Format.FieldNames() {
			names = append(names, tb.Name+"."+fn)
		}
	}
	return names
}

// NewDecoder implements Format: the source's decoder, with the table fields absent.
func (f *EnrichedFormat) NewDecoder() Decoder {
	return &enrichedDecoder{src: f.Source.NewDecoder(), n: len(f.names)}
}

type enrichedDecoder struct {
	src Decoder
	n   int
}

func (d *enrichedDecoder) Decode(rec *kgo.Record, ev *Event) error {
	err := d.src.Decode(rec, ev)
	for len(ev.Fields) < d.n {
		ev.Fields = append(ev.Fields, Field{})
	}
	return err
}

// Tables returns the pipeline's tables: those of its source format when it is an EnrichedFormat.
func (p *Pipeline) Tables() []*Table {
	if ef, ok := p.Source.Format.(*EnrichedFormat); ok {
		return ef.Tables
	}
	return nil
}

// HeaderTablePrefix starts the lineage header of each table on every output of an enriched
// event: streamd-table-NAME holds the table version the event was enriched from, as
// "partition:offset" pairs (table.Position), each offset the one after the last record applied.
const HeaderTablePrefix = "streamd-table-"

// tableKey is where the task store keeps the version of a table the partition's last committed
// cycle read.
func tableKey(name string) []byte { return []byte("table/" + name) }

// taskTables are a task's tables: the views of the open cycle, the versions the last committed
// cycle read, and the scratch of the row decoders. Used on the task's goroutine only.
type taskTables struct {
	specs []*Table
	// at is the operator an event is enriched before: the first, or the one after Dedup, so
	// that a duplicate is dropped before its rows are read.
	at      int
	sources []*table.Table // by table: the runtime's global table or the task's own
	own     []*table.Table // the co-partitioned tables this task opened
	base    []int          // index in Event.Fields of each table's first field
	nfields []int          // each table's field count
	// required is each table's first required field ("": none): a missing row rejects the event.
	required []string
	joins    []int // global: index of the join field; -1 co-partitioned
	decs     []Decoder
	rowEv    Event
	rowRec   kgo.Record
	keyBuf   []byte
	// rowBufs hold each table's row read for the current event: the event's string fields of the
	// table point into it until the next event, so each table has its own.
	rowBufs [][]byte

	views     []*table.View // the open cycle's, nil between cycles
	committed []table.Position
	headers   []kgo.RecordHeader // the open cycle's lineage headers
	// headerKeys and storeKeys are each table's lineage header name and task-store key.
	headerKeys []string
	storeKeys  [][]byte
	hdrBuf     [][]byte
}

// openTables opens the task's tables: its own partition of each co-partitioned table (restored to
// the partition's last stable offset), and waits until each global table has caught up with the
// version the partition's last committed cycle read, so that no event sees an older version than
// one the partition's committed outputs already reflect.
func (t *Task) openTables(ctx context.Context, p *Pipeline, env taskEnv) error {
	specs := p.Tables()
	if len(specs) == 0 {
		return nil
	}
	if env.tableDir == nil {
		return fmt.Errorf("stream: the pipeline has tables, which a local task (stream/streamtest) does not hold: they are read from Kafka by the Runtime")
	}
	ef := p.Source.Format.(*EnrichedFormat)
	tt := &taskTables{specs: specs}
	if len(p.Operators) > 0 {
		if _, ok := p.Operators[0].(*Dedup); ok {
			tt.at = 1
		}
	}
	t.tables = tt
	base := ef.nsrc
	for _, spec := range specs {
		tt.base = append(tt.base, base)
		n := len(spec.Format.FieldNames())
		tt.nfields = append(tt.nfields, n)
		base += n
		req, _ := requiredField(spec.Format)
		tt.required = append(tt.required, req)
		tt.decs = append(tt.decs, spec.Format.NewDecoder())
		tt.headerKeys = append(tt.headerKeys, HeaderTablePrefix+spec.Name)
		tt.storeKeys = append(tt.storeKeys, tableKey(spec.Name))
		join := -1
		if spec.Kind == GlobalTable {
			join, _ = ef.Source.FieldIndex(spec.Join)
		}
		tt.joins = append(tt.joins, join)
		var pos table.Position
		if v, ok, err := t.stores[taskStore].Get(tt.storeKeys[len(tt.storeKeys)-1]); err != nil {
			return err
		} else if ok {
			if pos, err = table.ParsePosition(string(v)); err != nil {
				return fmt.Errorf("stream: stored version of table %s: %w", spec.Name, err)
			}
		}
		tt.committed = append(tt.committed, pos)
		var src *table.Table
		switch spec.Kind {
		case GlobalTable:
			src = env.globals[spec.Name]
			if src == nil {
				return fmt.Errorf("stream: global table %s is not open", spec.Name)
			}
			if err := waitForVersion(ctx, t.log, src, pos, spec.Name); err != nil {
				return err
			}
		case CoPartitionedTable:
			tb, err := table.Open(ctx, table.Config{
				Name: spec.Name, Topic: spec.Topic, Partitions: []int32{t.partition},
				DB:         state.Options{Dir: env.tableDir(spec.Name), Cache: env.cache, Logger: t.log, MemTableSize: env.memTableBytes},
				ClientOpts: env.clientOpts, Log: t.log, Progress: env.tableProgress,
				Lag: env.tableLag, Applied: env.tableApplied,
			})
			if err != nil {
				return fmt.Errorf("stream: partition %d: %w", t.partition, err)
			}
			tt.own = append(tt.own, tb)
			src = tb
			v, err := tb.View()
			if err != nil {
				return err
			}
			behind, isBehind := v.Position().Behind(pos)
			_ = v.Close()
			if isBehind {
				// Restored to the topic's last stable offset and still behind: records this
				// partition's committed outputs reflect are gone from the topic.
				return fmt.Errorf("stream: table %s partition %d ends at offset %d, before offset %d that the committed outputs of %s/%d already reflect: the table's topic was truncated or recreated",
					spec.Name, behind.Partition, behind.Offset, committedOffset(pos, behind.Partition), t.topic, t.partition)
			}
		}
		tt.sources = append(tt.sources, src)
	}
	tt.views = make([]*table.View, len(specs))
	tt.rowBufs = make([][]byte, len(specs))
	t.cycle.tableMisses = make([]int, len(specs))
	tt.hdrBuf = make([][]byte, len(specs))
	return nil
}

func committedOffset(pos table.Position, p int32) int64 {
	for _, po := range pos {
		if po.Partition == p {
			return po.Offset
		}
	}
	return -1
}

// waitForVersion waits until tb's version is at least pos in every partition, saying in the log
// what it waits for once it has waited long (a follower that cannot reach the position: the
// table's topic lost records).
func waitForVersion(ctx context.Context, log *slog.Logger, tb *table.Table, pos table.Position, name string) error {
	start, warned := time.Now(), false
	for {
		v, err := tb.View()
		if err != nil {
			return err
		}
		at, behind := v.Position().Behind(pos)
		_ = v.Close()
		if !behind {
			return nil
		}
		if !warned && time.Since(start) > 30*time.Second {
			warned = true
			log.Warn("the partition waits for its global table to reach the version its committed outputs already reflect",
				"table", name, "table_partition", at.Partition, "at", at.Offset, "waiting_for", committedOffset(pos, at.Partition))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream: waiting for global table %s to reach %s: %w", name, pos, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// beginCycle takes the cycle's views, one per table, and records their versions in the task
// store, so that they commit with the cycle. Every event of the cycle reads these versions.
func (tt *taskTables) beginCycle(t *Task) error {
	tt.headers = tt.headers[:0]
	for i, src := range tt.sources {
		v, err := src.View()
		if err != nil {
			tt.endCycle()
			return fmt.Errorf("stream: table %s: %w", tt.specs[i].Name, err)
		}
		tt.views[i] = v
		tt.hdrBuf[i] = v.Position().Append(tt.hdrBuf[i][:0])
		t.stores[taskStore].Set(tt.storeKeys[i], tt.hdrBuf[i])
		tt.headers = append(tt.headers, kgo.RecordHeader{Key: tt.headerKeys[i], Value: tt.hdrBuf[i]})
	}
	return nil
}

// open reports whether the cycle's views are taken.
func (tt *taskTables) open() bool { return len(tt.views) > 0 && tt.views[0] != nil }

// endCycle releases the cycle's views; on commit their versions become the committed ones.
func (tt *taskTables) endCycle() {
	for i, v := range tt.views {
		if v != nil {
			_ = v.Close()
			tt.views[i] = nil
		}
	}
}

func (tt *taskTables) settle(committed bool) {
	if committed && tt.open() {
		for i, v := range tt.views {
			tt.committed[i] = append(tt.committed[i][:0], v.Position()...)
		}
	}
	tt.endCycle()
}

// enrich fills ev's table fields from the cycle's views. A row the table's format rejects, or a
// missing row of a table with required fields, is returned as a *Rejection.
func (tt *taskTables) enrich(t *Task, ev *Event) error {
	if !tt.open() {
		if err := tt.beginCycle(t); err != nil {
			return err
		}
	}
	return tt.fillAll(ev, tt.views, t.cycle.tableMisses)
}

// lookup fills ev's table fields for a feature look-up (/v1/features): from the tables as they
// stand now, like the next cycle's views, counting no miss and writing no state.
func (tt *taskTables) lookup(t *Task, ev *Event) error {
	views := make([]*table.View, len(tt.sources))
	defer func() {
		for _, v := range views {
			if v != nil {
				_ = v.Close()
			}
		}
	}()
	for i, src := range tt.sources {
		v, err := src.View()
		if err != nil {
			return fmt.Errorf("stream: table %s: %w", tt.specs[i].Name, err)
		}
		views[i] = v
	}
	return tt.fillAll(ev, views, nil)
}

// fillAll fills ev's table fields from views, counting misses in misses when it is not nil.
func (tt *taskTables) fillAll(ev *Event, views []*table.View, misses []int) error {
	for i, spec := range tt.specs {
		key := ev.Key
		if j := tt.joins[i]; j >= 0 {
			f := ev.Fields[j]
			switch f.Kind {
			case String:
				key = f.Str
			case Number:
				if f.Num != math.Trunc(f.Num) || math.Abs(f.Num) > 1<<53 {
					key = nil // not an integer: no row can have it as its key
				} else {
					tt.keyBuf = strconv.AppendInt(tt.keyBuf[:0], int64(f.Num), 10)
					key = tt.keyBuf
				}
			case Bool:
				key = strconv.AppendBool(tt.keyBuf[:0], f.Bool)
				tt.keyBuf = key
			default:
				key = nil
			}
		}
		found := false
		var row []byte
		if len(key) > 0 {
			var err error
			row, found, err = views[i].Get(key, tt.rowBufs[i][:0])
			tt.rowBufs[i] = row
			if err != nil {
				return fmt.Errorf("stream: table %s: %w", spec.Name, err)
			}
		}
		if err := tt.fill(i, ev, key, row, found, misses); err != nil {
			return err
		}
	}
	return nil
}

// fill decodes table i's row (or its absence) into ev's table fields.
func (tt *taskTables) fill(i int, ev *Event, key, row []byte, found bool, misses []int) error {
	spec := tt.specs[i]
	base, n := tt.base[i], tt.nfields[i]
	if !found {
		if misses != nil {
			misses[i]++
		}
		for j := 0; j < n; j++ {
			ev.Fields[base+j] = Field{}
		}
		if fi := tt.required[i]; fi != "" {
			return &Rejection{Reason: ReasonMissingField, Field: spec.Name + "." + fi,
				Detail: fmt.Sprintf("table %s has no row for key %q, and its field %s is required", spec.Name, truncate(key), fi)}
		}
		return nil
	}
	tt.rowRec = kgo.Record{Topic: spec.Topic, Key: key, Value: row, Timestamp: ev.Record.Timestamp}
	if err := tt.decs[i].Decode(&tt.rowRec, &tt.rowEv); err != nil {
		if rj, ok := err.(*Rejection); ok {
			out := *rj
			if out.Field != "" {
				out.Field = spec.Name + "." + out.Field
			}
			out.Detail = fmt.Sprintf("table %s row %q: %s", spec.Name, truncate(key), rj.Detail)
			return &out
		}
		return fmt.Errorf("stream: table %s row %q: %w", spec.Name, truncate(key), err)
	}
	copy(ev.Fields[base:base+n], tt.rowEv.Fields)
	return nil
}

// requiredField returns the first field a table's format requires: a row without it is rejected,
// so an event without a row is too. Formats other than the schema formats require none.
func requiredField(f Format) (string, bool) {
	var fields []FieldSpec
	switch sf := f.(type) {
	case *JSONFormat:
		fields = sf.Fields
	case *SchemaFormat:
		fields = sf.Fields
	}
	for _, fs := range fields {
		if fs.Required {
			return fs.Name, true
		}
	}
	return "", false
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}

// tableHeaders are the versions of the tables the cycle reads (none without tables), for the
// headers of every output.
func (t *Task) tableHeaders() []kgo.RecordHeader {
	if t.tables == nil || !t.tables.open() {
		return nil
	}
	return t.tables.headers
}

// close closes the cycle's views and the task's own tables.
func (tt *taskTables) close() error {
	tt.endCycle()
	var first error
	for _, tb := range tt.own {
		if err := tb.Close(); err != nil && first == nil {
			first = err
		}
	}
	tt.own = nil
	return first
}

// globalTableDir is where an instance keeps a global table.
func (r *Runtime) globalTableDir(name string) string {
	return filepath.Join(r.cfg.StateDir, r.pipeline.Name, "tables", name)
}

// openGlobalTables restores every global table of the pipeline and starts following it, before
// the instance joins its group: a task never opens without them.
func (r *Runtime) openGlobalTables(ctx context.Context) (close func(), err error) {
	r.globals = map[string]*table.Table{}
	closeAll := func() {
		for _, tb := range r.globals {
			_ = tb.Close()
		}
	}
	for _, spec := range r.pipeline.Tables() {
		if spec.Kind != GlobalTable {
			continue
		}
		parts := make([]int32, r.tablePartitions[spec.Name])
		for i := range parts {
			parts[i] = int32(i)
		}
		r.tablesRestoring.Store(fmt.Sprintf("restoring the global table %s from topic %s", spec.Name, spec.Topic))
		tb, err := table.Open(ctx, table.Config{
			Name: spec.Name, Topic: spec.Topic, Partitions: parts,
			DB:         state.Options{Dir: r.globalTableDir(spec.Name), Cache: r.cache, Logger: r.log, MemTableSize: r.mem.plan.memTableBytes},
			ClientOpts: r.restoreOpts(), Log: r.log,
			Progress: func(remaining int64) {
				r.tablesRestoring.Store(fmt.Sprintf("restoring the global table %s from topic %s: %d offsets to go", spec.Name, spec.Topic, remaining))
			},
			Lag: r.m.tableLag, Applied: r.m.tableApplied,
		})
		if err != nil {
			closeAll()
			r.tablesRestoring.Store("")
			return nil, fmt.Errorf("stream: %w", err)
		}
		r.globals[spec.Name] = tb
	}
	r.tablesRestoring.Store("")
	return closeAll, nil
}

// tableTopics are the topics of the pipeline's tables.
func (r *Runtime) tableTopics() []string {
	var out []string
	for _, tb := range r.pipeline.Tables() {
		out = append(out, tb.Topic)
	}
	return out
}

// checkTableTopics checks that every table's topic exists, and that a co-partitioned table's has
// the source's partition count, and records each table's partition count.
func (r *Runtime) checkTableTopics(details kadm.TopicDetails, partitions int32) error {
	r.tablePartitions = map[string]int32{}
	var errs []error
	for _, tb := range r.pipeline.Tables() {
		d, ok := details[tb.Topic]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			errs = append(errs, fmt.Errorf("%w: the topic %q of table %s", ErrNoSourceTopic, tb.Topic, tb.Name))
			continue
		case d.Err != nil:
			errs = append(errs, fmt.Errorf("stream: the topic %q of table %s: %w", tb.Topic, tb.Name, d.Err))
			continue
		}
		n := int32(len(d.Partitions))
		if tb.Kind == CoPartitionedTable && n != partitions {
			errs = append(errs, fmt.Errorf("%w: the co-partitioned table %s's topic %q has %d partitions and the source topic %q has %d; an event must find its key's row in its own task's partition, so they need the same count",
				ErrNotCoPartitioned, tb.Name, tb.Topic, n, r.pipeline.Source.Topic, partitions))
		}
		r.tablePartitions[tb.Name] = n
	}
	return errors.Join(errs...)
}

package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/state/table"
	"github.com/streamd/streamd/test/kafkatest"
)

// echoTablesOp emits, for every event, its id and the table fields it was enriched with.
type echoTablesOp struct {
	Topic  string
	Format Format
	fields []string
}

func (o *echoTablesOp) Name() string           { return "echo" }
func (o *echoTablesOp) OutputTopics() []string { return []string{o.Topic} }
func (o *echoTablesOp) Open(*Task) (Processor, error) {
	p := &echoTablesProc{op: o}
	for _, f := range o.fields {
		i, ok := o.Format.FieldIndex(f)
		if !ok {
			return nil, fmt.Errorf("no field %s", f)
		}
		p.idx = append(p.idx, i)
	}
	return p, nil
}

type echoTablesProc struct {
	op  *echoTablesOp
	idx []int
}

func (p *echoTablesProc) Close() error { return nil }

// ViewFeatures shows the table fields, so that /v1/features shows them.
func (p *echoTablesProc) ViewFeatures(t *Task, ev *Event, _ bool) (json.RawMessage, error) {
	return p.fields(ev), nil
}

func (p *echoTablesProc) Process(t *Task, ev *Event) error {
	t.Emit(p.op.Topic, ev.Key, p.fields(ev), ev.Time)
	return nil
}

func (p *echoTablesProc) fields(ev *Event) []byte {
	out := map[string]any{"id": string(ev.ID)}
	for j, i := range p.idx {
		f := ev.Fields[i]
		switch f.Kind {
		case Number:
			out[p.op.fields[j]] = f.Num
		case String:
			out[p.op.fields[j]] = string(f.Str)
		default:
			out[p.op.fields[j]] = nil
		}
	}
	b, _ := json.Marshal(out)
	return b
}

// tablesPipeline is a pipeline enriched from a global table joined by the event's field m and a
// co-partitioned table joined by its key.
func tablesPipeline(app, src, merchants, profiles, out, dlq string, required bool) *Pipeline {
	f := fatalFormat()
	f.Fields = []FieldSpec{{Name: "m", Type: String}}
	ef := &EnrichedFormat{Source: f, Tables: []*Table{
		{Name: "merchants", Topic: merchants, Kind: GlobalTable, Join: "m", Format: &JSONFormat{Time: EventTimeSpec{Format: TimeKafka}, Fields: []FieldSpec{
			{Name: "risk", Type: Number, Required: required}, {Name: "tier", Type: String, Values: []string{"a", "b", "c"}},
		}}},
		{Name: "profiles", Topic: profiles, Kind: CoPartitionedTable, Format: &JSONFormat{Time: EventTimeSpec{Format: TimeKafka}, Fields: []FieldSpec{{Name: "score", Type: Number}, {Name: "name", Type: String}}}},
	}}
	return &Pipeline{
		Name:            app,
		Source:          Source{Topic: src, Format: ef},
		Operators:       []Operator{&echoTablesOp{Topic: out, Format: ef, fields: []string{"merchants.risk", "merchants.tier", "profiles.score", "profiles.name"}}},
		DeadLetterTopic: dlq,
	}
}

func refOf(t *testing.T, b *kafkatest.Broker, topic string) *table.Reference {
	t.Helper()
	var recs []table.RefRecord
	for _, r := range b.ReadCommitted(t, topic, 30*time.Second) {
		recs = append(recs, table.RefRecord{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
	}
	return table.NewReference(recs)
}

// expectField decodes field name of a reference row as the echo operator would show it.
func expectField(row []byte, found bool, name string) any {
	if !found {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(row, &m) != nil {
		return nil
	}
	return m[name]
}

// TestTablesEnrichInOffsetOrder enriches events from a global and a co-partitioned table while
// both tables change (updates and tombstones, in transactions, some aborted); every output's table
// fields equal a replay of the tables' topics in offset order up to the version in its
// streamd-table-NAME headers, misses are counted, and an instance restarted on the same state
// directory goes on from versions no older than those its committed outputs show.
func TestTablesEnrichInOffsetOrder(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 2)
	merchants := b.Topic(t, "merchants", 2)
	profiles := b.Topic(t, "profiles", 2)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	ctx := context.Background()
	plain := b.Client(t)
	txn := b.Client(t, kgo.TransactionalID(kafkatest.Name(t, "tables")))
	writeTables := func(round int, commit bool) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		for m := range 5 {
			v := fmt.Appendf(nil, `{"risk":%d.5,"tier":"%c"}`, round*10+m, 'a'+rune((round+m)%3))
			if (round+m)%4 == 3 {
				v = nil // a tombstone
			}
			recs = append(recs, &kgo.Record{Topic: merchants, Key: fmt.Appendf(nil, "m%d", m), Value: v})
		}
		for k := range 13 {
			if (round+k)%3 == 0 {
				recs = append(recs, &kgo.Record{Topic: profiles, Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, `{"name":"the profile of card k%d, a name long enough to reach past any merchant's row","score":%d}`, k, round*100+k)})
			}
		}
		if err := txn.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	events := 0
	produceEvents := func(n int) {
		t.Helper()
		now := time.Now().UnixMilli()
		var recs []*kgo.Record
		for range n {
			i := events
			events++
			m := fmt.Sprintf("m%d", i%7) // m5 and m6 never have a row
			v := fmt.Sprintf(`{"id":"e-%05d","k":"k%d","ts":%d,"m":%q}`, i, i%13, now+int64(i), m)
			recs = append(recs, &kgo.Record{Topic: src, Key: fmt.Appendf(nil, "k%d", i%13), Value: []byte(v)})
		}
		if err := plain.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	writeTables(0, true)
	produceEvents(100)
	dir := t.TempDir()
	r := start(t, tablesPipeline(app, src, merchants, profiles, out, dlq, false), fatalConfig(b, dir))
	b.WaitCaughtUp(t, app, src, 60*time.Second, r.stopped)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for round := 1; ; round++ {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			writeTables(round, round%5 != 0)
		}
	}()
	for range 20 {
		produceEvents(50)
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	b.WaitCaughtUp(t, app, src, 60*time.Second, r.stopped)
	waitFor(t, 10*time.Second, "ready", r.rt.Ready)
	// Every table partition held has a lag series (both of merchants, both of profiles: this
	// instance owns both source partitions), the followers caught up, and applied the updates.
	if n := testutil.CollectAndCount(r.rt.m.tableLag); n != 4 {
		t.Errorf("%d streamd_table_lag_offsets series, want 4", n)
	}
	waitFor(t, 10*time.Second, "the tables' followers to catch up", func() bool {
		return testutil.ToFloat64(r.rt.m.tableLag.WithLabelValues("merchants", "0"))+testutil.ToFloat64(r.rt.m.tableLag.WithLabelValues("profiles", "1")) == 0
	})
	if got := testutil.ToFloat64(r.rt.m.tableApplied.WithLabelValues("merchants")); got == 0 {
		t.Errorf("streamd_table_records_applied_total{table=merchants} = 0 after the updates")
	}
	// A feature look-up reads the tables as they stand: the last committed rows of k3 and of a
	// merchant that has one.
	mref, pref := refOf(t, b, merchants), refOf(t, b, profiles)
	all := func(n int) table.Position {
		var p table.Position
		for i := range int32(n) {
			p = append(p, table.PartitionOffset{Partition: i, Offset: math.MaxInt64})
		}
		return p
	}
	m := "m0"
	for i := range 5 {
		if _, ok := mref.Get(fmt.Appendf(nil, "m%d", i), all(2)); ok {
			m = fmt.Sprintf("m%d", i)
		}
	}
	mrow, mok := mref.Get([]byte(m), all(2))
	prow, pok := pref.Get([]byte("k3"), all(2))
	want := map[string]any{"merchants.tier": expectField(mrow, mok, "tier"), "profiles.name": expectField(prow, pok, "name")}
	var mismatch string
	// The tables' followers may be a fetch behind the topics.
	waitFor(t, 10*time.Second, "a look-up to read the tables' last rows", func() bool {
		kf, err := r.rt.Features(ctx, []byte("k3"), fmt.Appendf(nil, `{"id":"q","k":"k3","ts":%d,"m":%q}`, time.Now().UnixMilli(), m), 0)
		if err != nil {
			t.Fatal(err)
		}
		mismatch = ""
		for name, w := range want {
			var got any
			_ = json.Unmarshal(kf.Features[name], &got)
			if fmt.Sprint(got) != fmt.Sprint(w) || w == nil {
				mismatch += fmt.Sprintf(" %s = %s, want %v;", name, kf.Features[name], w)
			}
		}
		if mismatch != "" {
			t.Logf("look-up of k3 with merchant %s:%s", m, mismatch)
		}
		return mismatch == ""
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	first := checkEnriched(t, b, r, out, merchants, profiles, events, nil)

	// A restart on the same directory reads versions no older than the committed outputs show.
	produceEvents(100)
	writeTables(1000, true)
	r2 := start(t, tablesPipeline(app, src, merchants, profiles, out, dlq, false), fatalConfig(b, dir))
	b.WaitCaughtUp(t, app, src, 60*time.Second, r2.stopped)
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
	second := checkEnriched(t, b, r2, out, merchants, profiles, events, first.ids)
	for p, pos := range second.oldest {
		if _, behind := pos.Behind(first.newest[p]); behind {
			t.Errorf("partition %d: after the restart an event read merchants at %s, older than %s before it", p, pos, first.newest[p])
		}
	}
}

type enrichedRun struct {
	// oldest and newest merchants versions read, by source partition, in this run's outputs.
	oldest, newest map[int32]table.Position
	// ids are the events of every output so far.
	ids map[string]bool
}

// checkEnriched reads every output, checks one per event and each one's table fields against
// the reference replay at its headers' versions, and checks the misses metric of run r, whose
// outputs are those of events not in before.
func checkEnriched(t *testing.T, b *kafkatest.Broker, r *running, out, merchants, profiles string, events int, before map[string]bool) enrichedRun {
	t.Helper()
	mref, pref := refOf(t, b, merchants), refOf(t, b, profiles)
	recs := b.ReadCommitted(t, out, 30*time.Second)
	seen := map[string]bool{}
	versions := map[string]bool{}
	run := enrichedRun{oldest: map[int32]table.Position{}, newest: map[int32]table.Position{}, ids: seen}
	misses := 0
	for _, rec := range recs {
		var got map[string]any
		if err := json.Unmarshal(rec.Value, &got); err != nil {
			t.Fatal(err)
		}
		id := got["id"].(string)
		if seen[id] {
			t.Fatalf("event %s has two outputs", id)
		}
		seen[id] = true
		mpos, err1 := table.ParsePosition(kafkatest.Header(rec, HeaderTablePrefix+"merchants"))
		ppos, err2 := table.ParsePosition(kafkatest.Header(rec, HeaderTablePrefix+"profiles"))
		if err := errors.Join(err1, err2); err != nil || len(mpos) != 2 || len(ppos) != 1 {
			t.Fatalf("output of %s: table versions %v %v (%v)", id, mpos, ppos, err)
		}
		part, _ := strconv.Atoi(kafkatest.Header(rec, HeaderSourcePartition))
		if ppos[0].Partition != int32(part) {
			t.Fatalf("output of %s from partition %d read profiles partition %d", id, part, ppos[0].Partition)
		}
		n, _ := strconv.Atoi(id[2:])
		mrow, mfound := mref.Get(fmt.Appendf(nil, "m%d", n%7), mpos)
		prow, pfound := pref.Get(rec.Key, ppos)
		if !mfound && !before[id] {
			misses++
		}
		want := map[string]any{"merchants.risk": expectField(mrow, mfound, "risk"), "merchants.tier": expectField(mrow, mfound, "tier"),
			"profiles.score": expectField(prow, pfound, "score"), "profiles.name": expectField(prow, pfound, "name")}
		for k, w := range want {
			if fmt.Sprint(got[k]) != fmt.Sprint(w) {
				t.Fatalf("output of %s: %s = %v, a replay of the table in offset order to %s/%s gives %v", id, k, got[k], mpos, ppos, w)
			}
		}
		if before[id] {
			continue
		}
		versions[mpos.String()] = true
		p := int32(part)
		if o, ok := run.oldest[p]; !ok || behindAll(mpos, o) {
			run.oldest[p] = mpos
		}
		if nw, ok := run.newest[p]; !ok || behindAll(nw, mpos) {
			run.newest[p] = mpos
		}
	}
	if len(seen) != events {
		t.Fatalf("%d outputs, want %d", len(seen), events)
	}
	if before == nil && len(versions) < 2 {
		t.Errorf("the outputs read only %d versions of merchants: the updates did not race the events", len(versions))
	}
	if got := testutil.ToFloat64(r.rt.m.tableMisses.WithLabelValues("merchants")); got != float64(misses) || misses == 0 {
		t.Errorf("streamd_table_misses_total{table=merchants} = %v, want %d (not 0)", got, misses)
	}
	return run
}

// behindAll reports whether p is behind q in some partition and ahead in none.
func behindAll(p, q table.Position) bool {
	_, b := p.Behind(q)
	_, a := q.Behind(p)
	return b && !a
}

// TestTablesRowRules: a row that breaks its table's rules, and a missing row of a table with a
// required field, make the event a dead letter with the rule's reason, naming the table.
func TestTablesRowRules(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 2)
	merchants := b.Topic(t, "merchants", 1)
	profiles := b.Topic(t, "profiles", 2)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	ctx := context.Background()
	cl := b.Client(t)
	rows := []*kgo.Record{
		{Topic: merchants, Key: []byte("ok"), Value: []byte(`{"risk":1,"tier":"a"}`)},
		{Topic: merchants, Key: []byte("badtier"), Value: []byte(`{"risk":1,"tier":"z"}`)},
		{Topic: merchants, Key: []byte("norisk"), Value: []byte(`{"tier":"a"}`)},
		{Topic: merchants, Key: []byte("notjson"), Value: []byte(`{"risk":`)},
	}
	if err := cl.ProduceSync(ctx, rows...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var evs []*kgo.Record
	now := time.Now().UnixMilli()
	for i, m := range []string{"ok", "badtier", "norisk", "notjson", "none"} {
		evs = append(evs, &kgo.Record{Topic: src, Key: []byte("k1"), Value: fmt.Appendf(nil, `{"id":"e-%d","k":"k1","ts":%d,"m":%q}`, i, now+int64(i), m)})
	}
	if err := cl.ProduceSync(ctx, evs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := start(t, tablesPipeline(app, src, merchants, profiles, out, dlq, true), fatalConfig(b, t.TempDir()))
	b.WaitCaughtUp(t, app, src, 60*time.Second, r.stopped)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := b.ReadCommitted(t, out, 30*time.Second); len(got) != 1 || !json.Valid(got[0].Value) {
		t.Fatalf("%d outputs, want the one of merchant ok", len(got))
	}
	want := map[string]string{
		"badtier": "out_of_range merchants.tier", "norisk": "missing_field merchants.risk",
		"notjson": "malformed_json ", "none": "missing_field merchants.risk",
	}
	dead := b.ReadCommitted(t, dlq, 30*time.Second)
	if len(dead) != len(want) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(want))
	}
	for _, d := range dead {
		var ev struct{ M string }
		_ = json.Unmarshal(d.Value, &ev)
		got := kafkatest.Header(d, HeaderReason) + " " + kafkatest.Header(d, HeaderField)
		if got != want[ev.M] || !strings.Contains(kafkatest.Header(d, HeaderError), "table merchants") {
			t.Errorf("event of merchant %s: dead letter %q (%s), want %q naming the table", ev.M, got, kafkatest.Header(d, HeaderError), want[ev.M])
		}
	}
}

// TestTablesCoPartitionedCount: a co-partitioned table whose topic has another partition count
// than the source is refused at start, naming both counts.
func TestTablesCoPartitionedCount(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 2)
	merchants := b.Topic(t, "merchants", 1)
	profiles := b.Topic(t, "profiles", 3)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	// A topic just created may not be in the metadata yet; the refusal must be the count's.
	adm := kadm.NewClient(b.Client(t))
	waitFor(t, 10*time.Second, "the new topics in the metadata", func() bool {
		d, err := adm.ListTopics(context.Background(), src, merchants, profiles)
		return err == nil && len(d[profiles].Partitions) == 3 && len(d[src].Partitions) == 2 && d[merchants].Err == nil
	})
	r := start(t, tablesPipeline(app, src, merchants, profiles, out, dlq, false), fatalConfig(b, t.TempDir()))
	err := r.wait(t, 30*time.Second)
	if !errors.Is(err, ErrNotCoPartitioned) || !strings.Contains(err.Error(), "has 3 partitions") || !strings.Contains(err.Error(), "has 2") {
		t.Fatalf("Run: %v, want ErrNotCoPartitioned naming 3 and 2 partitions", err)
	}
}

// TestReadinessWhileGlobalTableRestores: while a global table restores, /readyz says so.
func TestReadinessWhileGlobalTableRestores(t *testing.T) {
	rt := &Runtime{pipeline: &Pipeline{Name: "app"}}
	rt.tablesRestoring.Store("restoring the global table merchants from topic m: 10 offsets to go")
	if ready, why := rt.Readiness(); ready || !strings.Contains(why, "global table merchants") {
		t.Fatalf("Readiness = %v %q", ready, why)
	}
}

// TestTablesAfterDedup: a duplicate is dropped by dedup before its rows are read, so a row that
// broke its rules since the first copy does not make the duplicate a dead letter.
func TestTablesAfterDedup(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 2)
	merchants := b.Topic(t, "merchants", 1)
	profiles := b.Topic(t, "profiles", 2)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	ctx := context.Background()
	cl := b.Client(t)
	produce := func(recs ...*kgo.Record) {
		t.Helper()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ev := &kgo.Record{Topic: src, Key: []byte("k1"), Value: fmt.Appendf(nil, `{"id":"e-1","k":"k1","ts":%d,"m":"m"}`, time.Now().UnixMilli())}
	produce(&kgo.Record{Topic: merchants, Key: []byte("m"), Value: []byte(`{"risk":1,"tier":"a"}`)}, ev)
	p := tablesPipeline(app, src, merchants, profiles, out, dlq, false)
	p.Operators = append([]Operator{&Dedup{TTL: time.Hour}}, p.Operators...)
	r := start(t, p, fatalConfig(b, t.TempDir()))
	b.WaitCaughtUp(t, app, src, 60*time.Second, r.stopped)
	produce(&kgo.Record{Topic: merchants, Key: []byte("m"), Value: []byte(`{"risk":1,"tier":"z"}`)})
	waitFor(t, 10*time.Second, "the bad row in the table", func() bool {
		v, err := r.rt.globals["merchants"].View()
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		row, _, _ := v.Get([]byte("m"), nil)
		return strings.Contains(string(row), `"z"`)
	})
	dup := *ev
	produce(&dup, &kgo.Record{Topic: src, Key: []byte("k1"), Value: fmt.Appendf(nil, `{"id":"e-2","k":"k1","ts":%d,"m":"m"}`, time.Now().UnixMilli())})
	b.WaitCaughtUp(t, app, src, 60*time.Second, r.stopped)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := b.ReadCommitted(t, out, 30*time.Second); len(got) != 1 {
		t.Errorf("%d outputs, want e-1's", len(got))
	}
	dead := b.ReadCommitted(t, dlq, 30*time.Second)
	if len(dead) != 1 || !strings.Contains(string(dead[0].Value), `"e-2"`) {
		t.Errorf("%d dead letters, want e-2's only (the duplicate of e-1 dropped before its row was read)", len(dead))
	}
}

// TestEnrichAllocs: filling an event's table fields from a cycle's views (a hit in a global
// table joined by a string field, with a string and a number read from the row; a miss in a
// co-partitioned one) allocates nothing, measured over 1,000 events per run.
func TestEnrichAllocs(t *testing.T) {
	if tablesRace {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	b := kafkatest.Start(t)
	merchants, profiles := b.Topic(t, "merchants", 2), b.Topic(t, "profiles", 1)
	var rows []*kgo.Record
	for i := range 100 {
		rows = append(rows, &kgo.Record{Topic: merchants, Key: fmt.Appendf(nil, "m%d", i), Value: fmt.Appendf(nil, `{"risk":%d,"tier":"b"}`, i)})
	}
	if err := b.Client(t).ProduceSync(context.Background(), rows...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p := tablesPipeline("app", "src", merchants, profiles, "out", "dlq", false)
	ef := p.Source.Format.(*EnrichedFormat)
	if err := ef.Init(); err != nil {
		t.Fatal(err)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(b.Addrs...)}
	var sources []*table.Table
	for i, spec := range ef.Tables {
		tb, err := table.Open(context.Background(), table.Config{Name: spec.Name, Topic: spec.Topic, Partitions: []int32{0, 1}[:2-i],
			DB: state.Options{Dir: t.TempDir()}, ClientOpts: opts})
		if err != nil {
			t.Fatal(err)
		}
		defer tb.Close()
		sources = append(sources, tb)
	}
	tt := &taskTables{specs: ef.Tables, sources: sources, base: []int{1, 3}, nfields: []int{2, 2}, required: []string{"", ""}, joins: []int{0, -1},
		decs: []Decoder{ef.Tables[0].Format.NewDecoder(), ef.Tables[1].Format.NewDecoder()}, rowBufs: make([][]byte, 2)}
	views := make([]*table.View, 2)
	for i, src := range sources {
		v, err := src.View()
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		views[i] = v
	}
	dec := ef.NewDecoder()
	ev := &Event{}
	rec := &kgo.Record{Topic: "src", Key: []byte("k1"), Value: []byte(`{"id":"e","k":"k1","ts":1700000000000,"m":"m42"}`), Timestamp: time.UnixMilli(1700000000000)}
	if err := dec.Decode(rec, ev); err != nil {
		t.Fatal(err)
	}
	misses := make([]int, 2)
	run := func() {
		for range 1000 {
			if err := tt.fillAll(ev, views, misses); err != nil {
				t.Fatal(err)
			}
		}
	}
	run()
	if ev.Fields[1].Num != 42 || string(ev.Fields[2].Str) != "b" || ev.Fields[3].Kind != Absent || misses[1] != 1000 {
		t.Fatalf("enriched fields %+v, misses %v", ev.Fields, misses)
	}
	if n := testing.AllocsPerRun(5, run); n != 0 {
		t.Errorf("%v allocations per 1,000 events, want 0", n)
	}
}

// TestWaitForVersion: a task whose committed outputs reflect a global table version its instance
// has not reached yet waits for the table to reach it (or for its context), rather than read an
// older version.
func TestWaitForVersion(t *testing.T) {
	b := kafkatest.Start(t)
	topic := b.Topic(t, "table", 1)
	cl := b.Client(t)
	produce := func() {
		t.Helper()
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce()
	tb, err := table.Open(context.Background(), table.Config{Name: "m", Topic: topic, Partitions: []int32{0}, DB: state.Options{Dir: t.TempDir()}, ClientOpts: []kgo.Opt{kgo.SeedBrokers(b.Addrs...)}})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	log := slog.New(slog.DiscardHandler)
	ahead := table.Position{{Partition: 0, Offset: 2}}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = waitForVersion(ctx, log, tb, ahead, "m")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for a version not reached: %v, want the context's deadline", err)
	}
	produce()
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := waitForVersion(ctx, log, tb, ahead, "m"); err != nil {
		t.Fatalf("waiting for a version the table reaches: %v", err)
	}
	if err := waitForVersion(ctx, log, tb, nil, "m"); err != nil {
		t.Fatalf("no committed version: %v", err)
	}
}

// TestJoinByNumber: a global table joined by a number field finds the row keyed by the integer in
// decimal; a fraction, or an absent field, finds none.
func TestJoinByNumber(t *testing.T) {
	b := kafkatest.Start(t)
	topic := b.Topic(t, "table", 1)
	if err := b.Client(t).ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte("17"), Value: []byte(`{"risk":3}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	src := fatalFormat()
	src.Fields = []FieldSpec{{Name: "mid", Type: Number}}
	ef := &EnrichedFormat{Source: src, Tables: []*Table{{Name: "m", Topic: topic, Kind: GlobalTable, Join: "mid",
		Format: &JSONFormat{Time: EventTimeSpec{Format: TimeKafka}, Fields: []FieldSpec{{Name: "risk", Type: Number}}}}}}
	if err := ef.Init(); err != nil {
		t.Fatal(err)
	}
	tb, err := table.Open(context.Background(), table.Config{Name: "m", Topic: topic, Partitions: []int32{0}, DB: state.Options{Dir: t.TempDir()}, ClientOpts: []kgo.Opt{kgo.SeedBrokers(b.Addrs...)}})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	v, err := tb.View()
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	tt := &taskTables{specs: ef.Tables, sources: []*table.Table{tb}, base: []int{1}, nfields: []int{1}, required: []string{""}, joins: []int{0},
		decs: []Decoder{ef.Tables[0].Format.NewDecoder()}, rowBufs: make([][]byte, 1)}
	dec := ef.NewDecoder()
	for _, tc := range []struct {
		mid   string
		found bool
	}{{`17`, true}, {`17.0`, true}, {`17.5`, false}, {`null`, false}} {
		ev := &Event{}
		rec := &kgo.Record{Topic: "src", Key: []byte("k1"), Value: fmt.Appendf(nil, `{"id":"e","k":"k1","ts":1700000000000,"mid":%s}`, tc.mid), Timestamp: time.UnixMilli(1700000000000)}
		if err := dec.Decode(rec, ev); err != nil {
			t.Fatal(err)
		}
		misses := []int{0}
		if err := tt.fillAll(ev, []*table.View{v}, misses); err != nil {
			t.Fatal(err)
		}
		if found := ev.Fields[1].Kind == Number && ev.Fields[1].Num == 3; found != tc.found || misses[0] == 0 == !tc.found {
			t.Errorf("mid %s: row found %v (misses %d), want %v", tc.mid, found, misses[0], tc.found)
		}
	}
}

package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// trainingRow is a training row as model/training.go writes it.
func trainingRow(i int, eventTime int64) []byte {
	features := fmt.Sprintf(`"features":{"amount_log":%g,"channel":"online","tx_count_10m":%d}`, 1.5+float64(i)/7, i%9)
	if i%5 == 0 {
		features = `"features":{"amount_log":null,"channel":null,"tx_count_10m":3},"overflow":["amount_sum"]`
	}
	return fmt.Appendf(nil, `{"event_id":"e%06d","key":"card-%d","event_time":%d,"label":%d,"label_time":%d,`+
		`"source":{"topic":"tx","partition":%d,"offset":%d},"champion":"ftrl",`+
		`"models":[{"name":"ftrl","version":3,"score":0.%d5,"class":%d},{"name":"tree","version":3,"score":0.5,"class":1}],%s}`,
		i, i%40, eventTime, i%2, eventTime+60_000, i%2, i, i%10, i%2, features)
}

// wantColumns is the schema Run infers for trainingRow.
var wantColumns = map[string]string{
	"event_id": "STRING", "key": "STRING", "event_time": "TIMESTAMP(MILLIS)", "label": "INT64", "label_time": "TIMESTAMP(MILLIS)",
	"source.topic": "STRING", "source.partition": "INT64", "source.offset": "INT64", "champion": "STRING",
	"models.ftrl.version": "INT64", "models.ftrl.score": "DOUBLE", "models.ftrl.class": "INT64",
	"models.tree.version": "INT64", "models.tree.score": "DOUBLE", "models.tree.class": "INT64",
	"features.amount_log": "DOUBLE", "features.channel": "STRING", "features.tx_count_10m": "INT64", "overflow": "STRING",
}

// pyarrowTypes are the types pyarrow reads those columns as.
var pyarrowTypes = map[string]string{"STRING": "string", "INT64": "int64", "DOUBLE": "double", "TIMESTAMP(MILLIS)": "timestamp[ms, tz=UTC]", "BOOLEAN": "bool"}

// produceRows produces n training rows over three days of event time, starting 2024-03-01, with
// the event time in the streamd-event-time header, as streamd does.
func produceRows(t *testing.T, b *kafkatest.Broker, topic string, n int) map[string]int {
	t.Helper()
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	perDay := map[string]int{}
	var recs []*kgo.Record
	for i := range n {
		et := base + int64(i)*(3*86_400_000/int64(n))
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k"), Value: trainingRow(i, et),
			Headers: []kgo.RecordHeader{{Key: stream.HeaderEventTime, Value: strconv.AppendInt(nil, et, 10)}}})
		perDay[time.UnixMilli(et).UTC().Format("2006-01-02")]++
	}
	if err := b.Client(t).ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return perDay
}

// TestExportParquet: a topic of training rows over three days becomes three daily Parquet files
// with the inferred typed columns, each with its day's rows, which parquet-go reads back.
func TestExportParquet(t *testing.T) {
	b := kafkatest.Start(t)
	topic := b.Topic(t, "rows", 3)
	perDay := produceRows(t, b, topic, 900)
	dir := t.TempDir()
	sum, err := Run(context.Background(), Options{ClientOpts: []kgo.Opt{kgo.SeedBrokers(b.Addrs...)}, Topic: topic, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range sum.Columns {
		got[c.Name] = c.Type
	}
	if !reflect.DeepEqual(got, wantColumns) {
		t.Errorf("columns\n got %v\nwant %v", got, wantColumns)
	}
	if sum.Records != 900 || len(sum.Files) != 3 {
		t.Fatalf("%d records in %d files, want 900 in 3", sum.Records, len(sum.Files))
	}
	for _, f := range sum.Files {
		day := f.Period.Format("2006-01-02")
		if filepath.Base(f.Path) != topic+"-"+day+".parquet" || f.Records != perDay[day] {
			t.Errorf("file %s of %s: %d records, want %d", f.Path, day, f.Records, perDay[day])
		}
		data, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		if n := pf.NumRows(); n != int64(f.Records) || len(pf.Schema().Columns()) != len(wantColumns) {
			t.Errorf("%s: parquet-go reads %d rows and %d columns, want %d and %d", f.Path, n, len(pf.Schema().Columns()), f.Records, len(wantColumns))
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// pyarrowPython is a Python with pyarrow: $STREAMD_PYARROW_PYTHON, the venv .ci/run makes
// (~/.cache/streamd-pyarrow), or python3; "" when none has it.
func pyarrowPython() (string, string) {
	var tried []string
	cands := []string{os.Getenv("STREAMD_PYARROW_PYTHON")}
	if home, err := os.UserHomeDir(); err == nil {
		cands = append(cands, filepath.Join(home, ".cache", "streamd-pyarrow", "bin", "python"))
	}
	cands = append(cands, "python3")
	for _, c := range cands {
		if c == "" {
			continue
		}
		tried = append(tried, c)
		if exec.Command(c, "-c", "import pyarrow").Run() == nil {
			return c, ""
		}
	}
	return "", fmt.Sprint(tried)
}

// TestExportReadsBackInPyarrow: the Parquet files load in Python with pyarrow, with the columns'
// types and the row count of each file.
func TestExportReadsBackInPyarrow(t *testing.T) {
	if env := os.Getenv("STREAMD_PYARROW_PYTHON"); env != "" {
		// CI sets it (.ci/run): there a missing pyarrow is a failure, not a skip.
		if out, err := exec.Command(env, "-c", "import pyarrow").CombinedOutput(); err != nil {
			t.Fatalf("STREAMD_PYARROW_PYTHON=%s cannot import pyarrow: %v\n%s", env, err, out)
		}
	}
	py, tried := pyarrowPython()
	if py == "" {
		t.Skipf("no Python with pyarrow (tried %s): .ci/run installs it into ~/.cache/streamd-pyarrow; or set STREAMD_PYARROW_PYTHON", tried)
	}
	b := kafkatest.Start(t)
	topic := b.Topic(t, "rows", 2)
	produceRows(t, b, topic, 500)
	sum, err := Run(context.Background(), Options{ClientOpts: []kgo.Opt{kgo.SeedBrokers(b.Addrs...)}, Topic: topic, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got := readWithPyarrow(t, py, sum.Files)
	for _, f := range sum.Files {
		g := got[f.Path]
		if g.Rows != f.Records {
			t.Errorf("%s: pyarrow reads %d rows, want %d", f.Path, g.Rows, f.Records)
		}
		want := map[string]string{}
		for name, typ := range wantColumns {
			want[name] = pyarrowTypes[typ]
		}
		if !reflect.DeepEqual(g.Schema, want) {
			t.Errorf("%s: pyarrow schema\n got %v\nwant %v", f.Path, g.Schema, want)
		}
	}
	// The values survive too: the first row of the first file.
	first := got[sum.Files[0].Path].First
	if first["event_id"] != "e000000" || first["features.tx_count_10m"] != float64(3) || first["models.ftrl.version"] != float64(3) {
		t.Errorf("first row as pyarrow reads it: %v", first)
	}
}

type pyFile struct {
	Rows   int               `json:"rows"`
	Schema map[string]string `json:"schema"`
	First  map[string]any    `json:"first"`
}

func readWithPyarrow(t *testing.T, py string, files []File) map[string]pyFile {
	t.Helper()
	const script = `
import json, sys
import pyarrow.parquet as pq
out = {}
for f in sys.argv[1:]:
    t = pq.read_table(f)
    first = t.slice(0, 1).to_pylist()[0] if t.num_rows else {}
    out[f] = {"rows": t.num_rows, "schema": {x.name: str(x.type) for x in t.schema},
              "first": {k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v)) for k, v in first.items()}}
print(json.dumps(out))
`
	args := []string{"-c", script}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	sort.Strings(paths)
	out, err := exec.Command(py, append(args, paths...)...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("%s: %v\n%s", py, err, msg)
	}
	var got map[string]pyFile
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("pyarrow's answer %s: %v", out, err)
	}
	return got
}

// TestExportJSONLines: the jsonl format writes each record's value as one line, in hourly files.
func TestExportJSONLines(t *testing.T) {
	b := kafkatest.Start(t)
	topic := b.Topic(t, "rows", 1)
	produceRows(t, b, topic, 96) // 3 days: one row every 45 minutes
	dir := t.TempDir()
	sum, err := Run(context.Background(), Options{ClientOpts: []kgo.Opt{kgo.SeedBrokers(b.Addrs...)}, Topic: topic, Dir: dir, Format: JSONL, Roll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, f := range sum.Files {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range splitLines(data) {
			if !json.Valid(l) {
				t.Fatalf("%s: line %q is not JSON", f.Path, l)
			}
			lines++
		}
	}
	if lines != 96 || len(sum.Files) != 72 {
		t.Errorf("%d lines in %d files, want 96 in 72 (hours of three days)", lines, len(sum.Files))
	}
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, b[:i])
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}

// TestExportRefusesWhatIsNotJSON: a record that is not a JSON object stops the export, naming it,
// and leaves no file behind.
func TestExportRefusesWhatIsNotJSON(t *testing.T) {
	b := kafkatest.Start(t)
	topic := b.Topic(t, "rows", 1)
	produceRows(t, b, topic, 10)
	if err := b.Client(t).ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: []byte{0, 0, 0, 0, 1, 2}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{Parquet, JSONL} {
		dir := t.TempDir()
		_, err := Run(context.Background(), Options{ClientOpts: []kgo.Opt{kgo.SeedBrokers(b.Addrs...)}, Topic: topic, Dir: dir, Format: format})
		if err == nil || !strings.Contains(err.Error(), "@10") {
			t.Errorf("%s: %v, want an error naming the record at offset 10", format, err)
		}
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Errorf("%s: files left: %v", format, left)
		}
	}
	if err := (&Options{Format: "csv", Roll: time.Minute}).Validate(); err == nil || !strings.Contains(err.Error(), "a topic is required") ||
		!strings.Contains(err.Error(), `format "csv"`) || !strings.Contains(err.Error(), "roll 1m0s") || !strings.Contains(err.Error(), "output directory") {
		t.Errorf("Validate: %v", err)
	}
}

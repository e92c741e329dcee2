package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/test/kafkatest"
)

// TestExportCommandUsage: bad flags are refused with exit 2, naming what is wrong.
func TestExportCommandUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-topic", "t", "-out", "d"}, "-config FILE or -brokers HOST:PORT is required"},
		{[]string{"-brokers", "h:1", "-config", "f", "-topic", "t", "-out", "d"}, "give one"},
		{[]string{"-brokers", "h:1", "-topic", "t", "-out", "d", "-roll", "week"}, `-roll "week"`},
		{[]string{"-brokers", "h:1", "-topic", "t"}, "output directory is required"},
		{[]string{"-brokers", "h:1", "-topic", "t", "-out", "d", "-format", "csv"}, `format "csv"`},
	} {
		var out, errOut bytes.Buffer
		if code := run(append([]string{"export"}, tc.args...), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}

// TestExportCommand: streamd export writes a topic's JSON records into a file per day and says
// what it wrote.
func TestExportCommand(t *testing.T) {
	b := kafkatest.Start(t)
	topic := b.Topic(t, "rows", 1)
	var recs []*kgo.Record
	for i, v := range []string{
		`{"event_id":"a","event_time":1709251200000,"score":0.5}`,
		`{"event_id":"b","event_time":1709337600000,"score":1}`,
	} {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte{byte('a' + i)}, Value: []byte(v)})
	}
	if err := b.Client(t).ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run([]string{"export", "-brokers", strings.Join(b.Addrs, ","), "-topic", topic, "-out", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"exported 2 records", "into 2 files", "event_time", "TIMESTAMP(MILLIS)", "score", "DOUBLE"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, day := range []string{"2024-03-01", "2024-03-02"} {
		if _, err := os.Stat(filepath.Join(dir, topic+"-"+day+".parquet")); err != nil {
			t.Error(err)
		}
	}
}

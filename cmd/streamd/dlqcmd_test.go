package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestDLQReplayUsage: the command's usage errors exit 2 and say what is wrong; a bad window is
// refused before anything is read.
func TestDLQReplayUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"dlq"}, 2, "streamd dlq replay -config FILE"},
		{[]string{"dlq", "frobnicate"}, 2, "streamd dlq replay -config FILE"},
		{[]string{"dlq", "replay"}, 2, "-config FILE is required"},
		{[]string{"dlq", "replay", "-config", "../../configs/fraud-pipeline.yaml", "-reason", "out_of_range,typo"}, 2, `-reason "typo" is not a reason`},
		{[]string{"dlq", "replay", "-config", "../../configs/fraud-pipeline.yaml", "-from", "yesterday"}, 2, "neither RFC 3339"},
		{[]string{"dlq", "replay", "-config", "../../configs/fraud-pipeline.yaml", "-from", "2026-12-02T10:00:00Z", "-to", "1764669600000"}, 1, "is not before"},
		{[]string{"dlq", "replay", "-config", "../../configs/fraud-pipeline.yaml", "-topic", "transactions-dlq"}, 1, "is the dead-letter topic itself"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q %q; want exit %d saying %q", tc.args, code, out.String(), errOut.String(), tc.code, tc.want)
		}
	}
	var f time.Time
	if err := (timeFlag{&f}).Set("1764669600000"); err != nil || !f.Equal(time.UnixMilli(1764669600000)) {
		t.Errorf("-from in Unix ms: %v, %v", f, err)
	}
}

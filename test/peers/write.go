package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// write prints the table and keeps it, with the raw runs as JSON, in o.results.
func write(o options, started time.Time, runs []Run) error {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "`go run ./test/peers -records %d` (make bench-peers), %s, %s: %d cores, %s, %s\n\n",
		o.records, started.Format("2006-01-02 15:04Z"), host, runtime.NumCPU(), cpuModel(), runtime.Version())
	fmt.Fprintf(&b, "| job | system | records | seconds | rec/s | steady rec/s | ratio to bare loop | ratio to streamd | peak RSS | outputs | check | load1 before → after |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range runs {
		check := "agrees"
		if r.Required > 0 {
			check = fmt.Sprintf("agrees (%d windows required)", r.Required)
		}
		if r.CheckError != "" {
			check = "**differs**: " + strings.ReplaceAll(strings.Split(r.CheckError, "\n")[0], "|", "/")
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.2f | %.0f | %.0f | %s | %s | %d MiB | %d | %s | %.2f → %.2f |\n",
			r.Job, r.System, r.Records, r.Seconds, r.Rate, r.SteadyRate, ratio(r.RatioBare), ratio(r.RatioStreamd), r.PeakRSSMiB, r.Outputs, check, r.Load1Before, r.Load1After)
	}
	fmt.Print(b.String())
	if o.results == "" {
		return nil
	}
	if err := os.MkdirAll(o.results, 0o755); err != nil {
		return err
	}
	base := filepath.Join(o.results, started.Format("2006-01-02T1504Z"))
	if err := os.WriteFile(base+".md", []byte(b.String()), 0o644); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(struct {
		Started time.Time
		Host    string
		Cores   int
		CPU     string
		Go      string
		Records int
		Runs    []Run
	}{started, host, runtime.NumCPU(), cpuModel(), runtime.Version(), o.records, runs}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(base+".json", raw, 0o644)
}

func ratio(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "?"
}

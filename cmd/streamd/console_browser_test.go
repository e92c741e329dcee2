package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamd/streamd/internal/browsertest"
)

// consoleState is what the page shows, read out of its DOM.
type consoleState struct {
	Nodes        int      `json:"nodes"`
	SourceRate   float64  `json:"sourceRate"`
	SourceTotal  float64  `json:"sourceTotal"`
	OutputRates  float64  `json:"outputRates"`
	ChartPoints  int      `json:"chartPoints"`
	Charts       int      `json:"charts"`
	Canvases     int      `json:"canvases"`
	Partitions   int      `json:"partitions"`
	PartitionLag []string `json:"partitionCells"`
	Reasons      int      `json:"reasons"`
	State        string   `json:"state"`
	DeadRows     int      `json:"deadRows"`
}

const readConsole = `(() => {
  const num = (s) => parseFloat(s || "0");
  const src = document.querySelector('#graph g.node[data-id="source"]');
  const outs = [...document.querySelectorAll('#graph g.node.output')];
  const charts = [...document.querySelectorAll('#charts .chart[data-points]')];
  const rows = [...document.querySelectorAll('#partitions tbody tr[data-partition]')];
  return JSON.stringify({
    nodes: document.querySelectorAll('#graph g.node').length,
    sourceRate: src ? num(src.dataset.rate) : 0, sourceTotal: src ? num(src.dataset.total) : 0,
    outputRates: outs.reduce((a, n) => a + num(n.dataset.rate), 0),
    chartPoints: charts.reduce((a, c) => Math.max(a, parseInt(c.dataset.points, 10)), 0),
    charts: charts.length, canvases: document.querySelectorAll('#charts canvas').length,
    partitions: rows.length, partitionCells: rows.map((r) => [...r.cells].map((c) => c.textContent).join(" | ")),
    reasons: document.querySelectorAll('#reasons .row').length,
    deadRows: document.querySelectorAll('#deadletters tbody tr td.hidden-contents').length,
    state: document.querySelector('#state').textContent,
  });
})()`

// TestConsoleInBrowser runs the demo, loads the console it prints first in headless Chromium, and
// checks that the graph, a quality chart with data points and the partition table show live
// values; it saves a screenshot of the page (path in the log).
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for about a minute")
	}
	browser := browsertest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		defer outW.Close()
		done <- runDemo(ctx, []string{"-duration", "3m", "-admin", "127.0.0.1:0", "-rate", "1000"}, outW, io.Discard)
	}()
	lines := bufio.NewScanner(outR)
	if !lines.Scan() {
		t.Fatal("the demo printed nothing")
	}
	first := lines.Text()
	go func() { // keep draining, or the demo blocks on its table
		for lines.Scan() {
		}
	}()
	fields := strings.Fields(first)
	if len(fields) < 2 || fields[0] != "console" || !strings.HasPrefix(fields[1], "http://") {
		t.Fatalf("the demo's first line is %q, want the console's URL", first)
	}
	url := fields[1]
	t.Logf("console at %s", url)

	var raw string
	var st consoleState
	deadline := time.Now().Add(2 * time.Minute)
	loadCtx, loadCancel := context.WithTimeout(browser, time.Minute)
	err := chromedp.Do(loadCtx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS(`body[data-loaded="true"]`)))
	loadCancel()
	if err != nil {
		t.Fatalf("load %s: %v", url, err)
	}
	for {
		var err error
		if raw, err = chromedp.Run(browser, chromedp.Evaluate[string](readConsole)); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(raw), &st); err != nil {
			t.Fatal(err)
		}
		if st.SourceRate > 0 && st.OutputRates > 0 && st.ChartPoints >= 8 && st.Partitions > 0 && st.Canvases > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console did not show live values within 2m: %s", raw)
		}
		if err := chromedp.Do(browser, chromedp.Sleep(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("console shows: %s", raw)
	if st.Nodes < 8 { // 2 inputs, decode, 4 operators (clean, 2 windows, models), 5 outputs at least
		t.Errorf("graph has %d nodes, want the example pipeline's (at least 8)", st.Nodes)
	}
	if st.Partitions != 4 {
		t.Errorf("partition table has %d rows, want the demo's 4 partitions", st.Partitions)
	}
	if st.DeadRows == 0 {
		t.Errorf("no recent dead letter listed (with contents hidden, the default)")
	}
	if st.Reasons == 0 {
		t.Errorf("no dead-letter reasons shown (the demo sends 1%% broken records)")
	}
	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(browsertest.ArtifactDir(t), "console.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("the demo exited with %d", code)
	}
}

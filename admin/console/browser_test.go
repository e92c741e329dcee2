package console

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamd/streamd/internal/browsertest"
	"github.com/streamd/streamd/model"
)

// TestTokenPrompt: against a server that requires a token, the page asks for it, refuses a wrong
// one, and with the right one (kept in sessionStorage, sent as a bearer header) shows the data.
func TestTokenPrompt(t *testing.T) {
	browser := browsertest.New(t)
	reg, consumed, _ := counterRegistry()
	restoring := prometheus.NewGauge(prometheus.GaugeOpts{Name: "streamd_restoring_partitions"})
	remaining := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "streamd_restore_remaining_offsets"}, []string{"store", "partition"})
	reg.MustRegister(restoring, remaining)
	restoring.Set(1)
	remaining.WithLabelValues("card_activity_1m", "2").Set(4000)
	models := &fakeModels{v: model.View{Models: []model.ModelView{{Name: "m", Version: 1, Champion: true,
		Evaluation: []model.MetricView{{Metric: "auc", Rolling: 0.8, Examples: 10}}}}}}
	c, base := serve(t, Options{Gatherer: reg, Graph: Graph{App: "tokened", Nodes: []Node{{ID: idSource, Kind: KindInput, Label: "in", Topic: "in", Stores: []string{}}}, Edges: []Edge{}},
		Models: []ModelViewer{models}, DeadLetters: deadLetters()})
	consumed.WithLabelValues("in").Add(5)
	for i := 1; i <= 3; i++ {
		c.sample(time.Now().Add(time.Duration(i) * time.Second))
	}
	remaining.WithLabelValues("card_activity_1m", "2").Set(1000) // 3000 of 4000 replayed
	c.sample(time.Now().Add(4 * time.Second))

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(browser, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("load the page and see the prompt", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#login")))
	step("a wrong token is refused",
		chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token-0123456789"), chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.CSS("#login")))
	pctx, pcancel := context.WithTimeout(browser, 30*time.Second)
	defer pcancel()
	if _, err := chromedp.Run(pctx, chromedp.Poll[bool](`document.querySelector("#login-error").textContent.includes("refused")`)); err != nil {
		t.Fatalf("no refusal shown: %v", err)
	}
	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(browsertest.ArtifactDir(t), "console-token.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
	step("the right token opens the console",
		chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitReady(chromedp.CSS(`body[data-loaded="true"]`)), chromedp.WaitNotVisible(chromedp.CSS("#login")))
	ctx, cancel := context.WithTimeout(browser, 30*time.Second)
	defer cancel()
	app, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#app").textContent`))
	if err != nil || app != "tokened" {
		t.Fatalf("app name %q (%v), want the data of /v1/pipeline", app, err)
	}
	kept, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("streamd.admin.token") || ""`))
	if err != nil || kept != token {
		t.Fatalf("sessionStorage holds %q (%v), want the token", kept, err)
	}
	// While a partition restores, the console shows its progress.
	progress, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#restore-card").hidden ? "hidden" : document.querySelector("#restore").textContent`))
	if err != nil || !strings.Contains(progress, "card_activity_1m · partition 2") || !strings.Contains(progress, "75% · 1,000 left") {
		t.Fatalf("restore progress %q (%v), want card_activity_1m partition 2 at 75%%, 1,000 left", progress, err)
	}
	png, err = chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot = filepath.Join(browsertest.ArtifactDir(t), "console-restoring.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
}

// Package browsertest starts headless Chromium for tests through chromedp, and skips the test,
// saying why, where no Chromium is installed. CI installs Debian's chromium (.ci/run), so there the
// browser tests run.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Find returns the Chromium (or Chrome) binary to use: $STREAMD_CHROMIUM, else the first of the
// usual names on PATH, else "".
func Find() string {
	if p := os.Getenv("STREAMD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts headless Chromium with a 1440x1000 window and returns a chromedp context for one tab;
// the browser stops when the test ends. Without a Chromium the test is skipped.
func New(t *testing.T) context.Context {
	t.Helper()
	bin := Find()
	if bin == "" {
		t.Skip("no Chromium found (install Debian's chromium, or set STREAMD_CHROMIUM): this test drives a browser")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.WindowSize(1440, 1000),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelTab)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	return ctx
}

// ArtifactDir is where a test saves what a person should look at (screenshots):
// $STREAMD_TEST_ARTIFACTS, kept after the test, else a temporary directory.
func ArtifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("STREAMD_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

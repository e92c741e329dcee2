package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/streamd/streamd/admin"
)

// TestPprofOnlyWhenAsked: the admin server serves Go's profiles once handlePprof registered them
// (admin.pprof: true), and not otherwise.
func TestPprofOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		adm := admin.New(admin.Options{Listen: "127.0.0.1:0"})
		if on {
			handlePprof(adm)
		}
		if err := adm.Start(); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + adm.Addr() + "/debug/pprof/heap?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = adm.Close(context.Background())
		served := resp.StatusCode == http.StatusOK && strings.Contains(string(body), "heap profile")
		if served != on {
			t.Errorf("pprof on %v: status %d, heap profile served %v", on, resp.StatusCode, served)
		}
	}
}

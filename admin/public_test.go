package admin

import (
	"context"
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestHandlePublic: with a token required, the paths registered with HandlePublic are served
// without it, exactly those (not the paths below them, nor another path), and the data endpoints
// still need it.
func TestHandlePublic(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := New(Options{Listen: "127.0.0.1:0", Token: testToken, Gatherer: reg, Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
	s.HandleInspection(Inspection{Watermarks: fakeWatermarks{}})
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("page")) })
	s.HandlePublic("/", page)
	s.HandlePublic("/console/app.js", page)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	base := "http://" + s.Addr()
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/", "", http.StatusOK},
		{"/console/app.js", "", http.StatusOK},
		{"/console/app.js", "Bearer " + otherToken, http.StatusOK}, // no data: a wrong token does not matter
		{"/console/app.js/x", "", http.StatusUnauthorized},
		{"/console/", "", http.StatusUnauthorized},
		{"/index.html", "", http.StatusUnauthorized},
		{"/v1/watermarks", "", http.StatusUnauthorized},
		{"/metrics", "", http.StatusUnauthorized},
		{"/v1/watermarks", "Bearer " + testToken, http.StatusOK},
		{"/nothing", "Bearer " + testToken, http.StatusNotFound},
	} {
		t.Run(tc.path+" "+tc.auth, func(t *testing.T) {
			if code, _, body := request(t, http.DefaultClient, base+tc.path, tc.auth); code != tc.want {
				t.Fatalf("GET %s: %d %q, want %d", tc.path, code, body, tc.want)
			}
		})
	}
}

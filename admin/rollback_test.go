package admin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/streamd/streamd/model"
)

// fakeRollbacker knows model "nightly" with versions 0..2; version 3 is refused.
type fakeRollbacker struct{ live map[string]int64 }

func (f *fakeRollbacker) RollbackLive(_ context.Context, name string, v int64) error {
	switch {
	case name != "nightly":
		return fmt.Errorf("%w: %q", model.ErrNoSuchModel, name)
	case v > 2:
		return fmt.Errorf("%w: nightly has no version %d", model.ErrVersionRefused, v)
	}
	f.live[name] = v
	return nil
}

// TestRollbackEndpoint: POST /v1/models/{name}/rollback?version=V needs the admin token, makes
// the version live, and answers 400, 404 and 409 with the reason for a bad version, an unknown
// model and a refused version.
func TestRollbackEndpoint(t *testing.T) {
	f := &fakeRollbacker{live: map[string]int64{}}
	s := New(Options{Listen: "127.0.0.1:0", Token: testToken, Logger: slog.New(slog.DiscardHandler)})
	s.HandleInspection(Inspection{Rollbacks: []ModelRollbacker{f}})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	post := func(path, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr()+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	bearer := "Bearer " + testToken
	for _, tc := range []struct {
		path, auth string
		want       int
		body       string
	}{
		{"/v1/models/nightly/rollback?version=1", "", 401, ""},
		{"/v1/models/nightly/rollback?version=1", bearer, 200, `"live": 1`},
		{"/v1/models/nightly/rollback", bearer, 400, "version"},
		{"/v1/models/nightly/rollback?version=-1", bearer, 400, "version"},
		{"/v1/models/daily/rollback?version=1", bearer, 404, "daily"},
		{"/v1/models/nightly/rollback?version=3", bearer, 409, "no version 3"},
	} {
		code, body := post(tc.path, tc.auth)
		if code != tc.want || !strings.Contains(body, tc.body) {
			t.Errorf("POST %s: %d %s, want %d with %q", tc.path, code, body, tc.want, tc.body)
		}
	}
	if f.live["nightly"] != 1 {
		t.Errorf("live = %v", f.live)
	}
}

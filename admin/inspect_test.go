package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/model"
	"github.com/streamd/streamd/stream"
)

// The production sources satisfy the interfaces the handlers consume.
var (
	_ WatermarkReporter = (*stream.Runtime)(nil)
	_ KeyInspector      = (*stream.Runtime)(nil)
	_ ModelViewer       = (*model.Registry)(nil)
)

type fakeWatermarks []stream.WatermarkInfo

func (f fakeWatermarks) Watermarks() []stream.WatermarkInfo { return f }

// fakeInspector answers Inspect with its function and remembers the keys it was asked for.
type fakeInspector struct {
	inspect func(ctx context.Context, key []byte) (*stream.KeyState, error)
	keys    []string
}

func (f *fakeInspector) Inspect(ctx context.Context, key []byte) (*stream.KeyState, error) {
	f.keys = append(f.keys, string(key))
	return f.inspect(ctx, key)
}

type fakeModels model.View

func (f fakeModels) View() model.View { return model.View(f) }

// serve sends one request through the server's routes.
func serve(s *Server, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// decodeJSON checks that rec answered code with a JSON body and decodes it into v.
func decodeJSON(t *testing.T, rec *httptest.ResponseRecorder, code int, v any) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("status %d, want %d; body %s", rec.Code, code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("body is not JSON (%v): %s", err, rec.Body)
	}
}

func TestWatermarksEndpoint(t *testing.T) {
	t.Run("partitions", func(t *testing.T) {
		want := []stream.WatermarkInfo{
			{Topic: "src", Partition: 0, Watermark: "2026-01-02T03:04:05Z", WatermarkMs: 1767323045000, Why: "event time"},
			{Topic: "src", Partition: 3, Idle: true, NextOffset: 12, StableOffset: 12, Why: "idle"},
		}
		s := New(Options{})
		s.HandleInspection(Inspection{Watermarks: fakeWatermarks(want)})
		var got struct {
			Partitions []stream.WatermarkInfo `json:"partitions"`
		}
		decodeJSON(t, serve(s, "/v1/watermarks"), http.StatusOK, &got)
		if !reflect.DeepEqual(got.Partitions, want) {
			t.Errorf("partitions = %+v, want %+v", got.Partitions, want)
		}
	})
	t.Run("none owned", func(t *testing.T) {
		s := New(Options{})
		s.HandleInspection(Inspection{Watermarks: fakeWatermarks(nil)})
		rec := serve(s, "/v1/watermarks")
		var got map[string]any
		decodeJSON(t, rec, http.StatusOK, &got)
		if v, ok := got["partitions"]; !ok || v != nil {
			t.Errorf("body %s, want partitions: null", rec.Body)
		}
	})
}

func TestStateEndpoint(t *testing.T) {
	found := &stream.KeyState{Key: "card-1", Partition: 2, Watermark: "2026-01-02T03:04:05Z",
		Operators: map[string]any{"features": map[string]any{"count": 3.0}}}
	notOwned := fmt.Errorf("%w (partition 1)", stream.ErrNotOwned)
	for _, tc := range []struct {
		name     string
		path     string
		inspect  func(ctx context.Context, key []byte) (*stream.KeyState, error)
		wantKeys []string // the keys the inspector is asked for
		code     int
		wantErr  string // the "error" field of the body; "" when the answer is a KeyState
	}{
		{name: "owned", path: "/v1/state/card-1", wantKeys: []string{"card-1"}, code: http.StatusOK,
			inspect: func(context.Context, []byte) (*stream.KeyState, error) { return found, nil }},
		{name: "escaped key", path: "/v1/state/user%2F7%20x", wantKeys: []string{"user/7 x"}, code: http.StatusOK,
			inspect: func(_ context.Context, key []byte) (*stream.KeyState, error) {
				return &stream.KeyState{Key: string(key), Operators: map[string]any{"w": map[string]any{"count": 1.0}}}, nil
			}},
		{name: "never seen", path: "/v1/state/card-0", wantKeys: []string{"card-0"}, code: http.StatusNotFound,
			wantErr: `no state for key "card-0" on partition 3: no event with this key is in an open window`,
			inspect: func(_ context.Context, key []byte) (*stream.KeyState, error) {
				return &stream.KeyState{Key: string(key), Partition: 3, Operators: map[string]any{}}, nil
			}},
		{name: "not owned", path: "/v1/state/card-9", wantKeys: []string{"card-9"}, code: http.StatusNotFound, wantErr: notOwned.Error(),
			inspect: func(context.Context, []byte) (*stream.KeyState, error) { return nil, notOwned }},
		{name: "not started", path: "/v1/state/card-9", wantKeys: []string{"card-9"}, code: http.StatusInternalServerError, wantErr: stream.ErrNotStarted.Error(),
			inspect: func(context.Context, []byte) (*stream.KeyState, error) { return nil, stream.ErrNotStarted }},
		{name: "operator error", path: "/v1/state/card-9", wantKeys: []string{"card-9"}, code: http.StatusInternalServerError, wantErr: "window: state: broken",
			inspect: func(context.Context, []byte) (*stream.KeyState, error) {
				return nil, errors.New("window: state: broken")
			}},
		{name: "timeout", path: "/v1/state/card-9", wantKeys: []string{"card-9"}, code: http.StatusInternalServerError, wantErr: context.DeadlineExceeded.Error(),
			inspect: func(ctx context.Context, _ []byte) (*stream.KeyState, error) {
				if _, ok := ctx.Deadline(); !ok {
					return nil, errors.New("the look-up has no deadline")
				}
				<-ctx.Done()
				return nil, ctx.Err()
			}},
		{name: "empty key", path: "/v1/state/", code: http.StatusNotFound},
		{name: "key with a slash", path: "/v1/state/a/b", code: http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &fakeInspector{inspect: tc.inspect}
			s := New(Options{})
			s.HandleInspection(Inspection{State: in, StateTimeout: 10 * time.Millisecond})
			rec := serve(s, tc.path)
			if !reflect.DeepEqual(in.keys, tc.wantKeys) {
				t.Errorf("inspector asked for %q, want %q", in.keys, tc.wantKeys)
			}
			switch {
			case tc.inspect == nil: // not routed to the handler
				if rec.Code != tc.code {
					t.Errorf("status %d, want %d", rec.Code, tc.code)
				}
			case tc.wantErr != "":
				var got map[string]string
				decodeJSON(t, rec, tc.code, &got)
				if !reflect.DeepEqual(got, map[string]string{"error": tc.wantErr}) {
					t.Errorf("body %v, want error %q", got, tc.wantErr)
				}
			default:
				var got stream.KeyState
				decodeJSON(t, rec, tc.code, &got)
				want, _ := tc.inspect(context.Background(), []byte(tc.wantKeys[0]))
				if !reflect.DeepEqual(&got, want) {
					t.Errorf("body %+v, want %+v", got, *want)
				}
			}
		})
	}
}

func TestStateTimeoutDefault(t *testing.T) {
	in := &fakeInspector{inspect: func(ctx context.Context, _ []byte) (*stream.KeyState, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			return nil, errors.New("no deadline")
		}
		if left := time.Until(dl); left <= defaultStateTimeout-time.Second || left > defaultStateTimeout {
			return nil, fmt.Errorf("deadline in %s, want about %s", left, defaultStateTimeout)
		}
		return &stream.KeyState{Key: "k", Operators: map[string]any{"w": []int{1}}}, nil
	}}
	s := New(Options{})
	s.HandleInspection(Inspection{State: in})
	if rec := serve(s, "/v1/state/k"); rec.Code != http.StatusOK {
		t.Errorf("status %d: %s", rec.Code, rec.Body)
	}
}

func TestModelsEndpoint(t *testing.T) {
	a := model.View{Models: []model.ModelView{{Name: "lr", Kind: "logistic", Champion: true, Version: 3,
		Partitions: []model.ReplicaView{{Partition: 0, Version: 3, Updates: 10, Digest: "ab"}}}},
		Partitions: []int32{0}, Labels: map[string]float64{"joined": 4}}
	b := model.View{Models: []model.ModelView{{Name: "tree", Kind: "hoeffding"}}, Labels: map[string]float64{}, Drifts: 1}
	t.Run("in pipeline order", func(t *testing.T) {
		s := New(Options{})
		s.HandleInspection(Inspection{Models: []ModelViewer{fakeModels(a), fakeModels(b)}})
		var got struct {
			Operators []model.View `json:"operators"`
		}
		decodeJSON(t, serve(s, "/v1/models"), http.StatusOK, &got)
		if want := []model.View{a, b}; !reflect.DeepEqual(got.Operators, want) {
			t.Errorf("operators = %+v, want %+v", got.Operators, want)
		}
	})
	t.Run("no model operators", func(t *testing.T) {
		s := New(Options{})
		s.HandleInspection(Inspection{})
		rec := serve(s, "/v1/models")
		if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != "{\n  \"operators\": []\n}" {
			t.Errorf("= %d %q, want 200 with operators: [] (never null)", rec.Code, rec.Body)
		}
	})
}

// TestInspectionLeavesOutUnsetSources: an endpoint whose source is nil is not served.
func TestInspectionLeavesOutUnsetSources(t *testing.T) {
	s := New(Options{})
	s.HandleInspection(Inspection{})
	for _, path := range []string{"/v1/watermarks", "/v1/state/k"} {
		if rec := serve(s, path); rec.Code != http.StatusNotFound {
			t.Errorf("%s = %d, want 404", path, rec.Code)
		}
	}
}

var _ FeatureLookup = (*stream.Runtime)(nil)

// fakeFeatures answers Features with its function and remembers what it was asked.
type fakeFeatures struct {
	features func(key, event []byte, at int64) (*stream.KeyFeatures, error)
	asked    []string
}

func (f *fakeFeatures) Features(_ context.Context, key, event []byte, at int64) (*stream.KeyFeatures, error) {
	f.asked = append(f.asked, fmt.Sprintf("%s|%s|%d", key, event, at))
	return f.features(key, event, at)
}

func TestFeaturesEndpoint(t *testing.T) {
	found := func(key, event []byte, at int64) (*stream.KeyFeatures, error) {
		return &stream.KeyFeatures{Key: string(key), Partition: 1, AsOfMs: at, Found: true, WithEvent: event != nil,
			Features: map[string]json.RawMessage{"tx_count_10m": json.RawMessage("3")}}, nil
	}
	unknown := func(key, event []byte, at int64) (*stream.KeyFeatures, error) {
		return &stream.KeyFeatures{Key: string(key), Partition: 2, WithEvent: event != nil, Features: map[string]json.RawMessage{}}, nil
	}
	fails := func(err error) func([]byte, []byte, int64) (*stream.KeyFeatures, error) {
		return func([]byte, []byte, int64) (*stream.KeyFeatures, error) { return nil, err }
	}
	for _, tc := range []struct {
		name, method, path, body string
		features                 func(key, event []byte, at int64) (*stream.KeyFeatures, error)
		wantAsked                string
		code                     int
	}{
		{name: "found", method: "GET", path: "/v1/features/card-1", features: found, wantAsked: "card-1||0", code: 200},
		{name: "at in ms", method: "GET", path: "/v1/features/card-1?at=1767323045000", features: found, wantAsked: "card-1||1767323045000", code: 200},
		{name: "at in RFC 3339", method: "GET", path: "/v1/features/card-1?at=2026-01-02T03:04:05Z", features: found, wantAsked: "card-1||1767323045000", code: 200},
		{name: "bad at", method: "GET", path: "/v1/features/card-1?at=yesterday", features: found, code: 400},
		{name: "event in the query", method: "GET", path: "/v1/features/card-1?event=%7B%22a%22%3A1%7D", features: found, wantAsked: `card-1|{"a":1}|0`, code: 200},
		{name: "event as the body", method: "POST", path: "/v1/features/card-1", body: `{"a":2}`, features: found, wantAsked: `card-1|{"a":2}|0`, code: 200},
		{name: "unknown key", method: "GET", path: "/v1/features/card-0", features: unknown, wantAsked: "card-0||0", code: 404},
		{name: "unknown key with an event", method: "POST", path: "/v1/features/card-0", body: `{}`, features: unknown, wantAsked: "card-0|{}|0", code: 200},
		{name: "not owned", method: "GET", path: "/v1/features/card-9", features: fails(fmt.Errorf("%w (partition 1)", stream.ErrNotOwned)), wantAsked: "card-9||0", code: 404},
		{name: "busy", method: "GET", path: "/v1/features/card-9", features: fails(fmt.Errorf("%w (partition 1)", stream.ErrLookupsBusy)), wantAsked: "card-9||0", code: 503},
		{name: "rejected event", method: "POST", path: "/v1/features/card-9", body: `{}`, wantAsked: "card-9|{}|0", code: 422,
			features: fails(&stream.EventRejectedError{Rejection: &stream.Rejection{Reason: stream.ReasonMissingField, Field: "amount", Detail: "absent"}})},
		{name: "another key's event", method: "POST", path: "/v1/features/card-9", body: `{}`, wantAsked: "card-9|{}|0", code: 400,
			features: fails(&stream.KeyMismatchError{Key: "card-9", EventKey: "card-8"})},
		{name: "failure", method: "GET", path: "/v1/features/card-9", features: fails(errors.New("window: broken")), wantAsked: "card-9||0", code: 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeFeatures{features: tc.features}
			s := New(Options{})
			s.HandleInspection(Inspection{Features: src})
			rec := httptest.NewRecorder()
			var body *strings.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			} else {
				body = strings.NewReader("")
			}
			s.mux.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, body))
			var got map[string]any
			decodeJSON(t, rec, tc.code, &got)
			if asked := strings.Join(src.asked, ","); asked != tc.wantAsked {
				t.Errorf("asked %q, want %q", asked, tc.wantAsked)
			}
			if tc.code == 422 && got["reason"] != "missing_field" {
				t.Errorf("422 body %v lacks the reason", got)
			}
			if tc.code == 200 && got["features"] == nil {
				t.Errorf("200 body %v lacks the features", got)
			}
		})
	}
}

package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/streamd/streamd/model"
	"github.com/streamd/streamd/stream"
)

// WatermarkReporter reports every owned partition's event-time progress, for /v1/watermarks.
// *stream.Runtime implements it. It is called on the request's goroutine, concurrently with the
// pipeline, so it must be safe for that.
type WatermarkReporter interface {
	Watermarks() []stream.WatermarkInfo
}

// KeyInspector looks up what the pipeline holds for one entity key, for /v1/state/{key}.
// *stream.Runtime implements it: it returns stream.ErrNotOwned (wrapped) when another instance owns
// the key's partition, and stops waiting when ctx is done.
type KeyInspector interface {
	Inspect(ctx context.Context, key []byte) (*stream.KeyState, error)
}

// FeatureLookup computes a key's feature values as a new event would see them now, for
// /v1/features/{key}. *stream.Runtime implements it, with KeyInspector's errors, and
// *stream.EventRejectedError or *stream.KeyMismatchError for a query's event the pipeline would not
// accept under that key.
type FeatureLookup interface {
	Features(ctx context.Context, key, event []byte, at int64) (*stream.KeyFeatures, error)
}

// ModelViewer shows one model operator's models on this instance, for /v1/models. *model.Registry
// implements it.
type ModelViewer interface {
	View() model.View
}

// Inspection are the sources of the inspection endpoints. A nil Watermarks or State leaves its
// endpoint out; Models may be empty (an instance without model operators then answers with no
// operators).
type Inspection struct {
	Watermarks WatermarkReporter
	State      KeyInspector
	// StateTimeout bounds one /v1/state look-up, which waits for the key's task to finish what it
	// was handed. Default 5s.
	StateTimeout time.Duration
	// Features serves /v1/features/{key}; nil leaves it out. Its look-ups are bounded by
	// StateTimeout too.
	Features FeatureLookup
	// Models are the pipeline's model operators, in pipeline order.
	Models []ModelViewer
	// Rollbacks are the model operators with offline models, for POST /v1/models/{name}/rollback;
	// none leaves the endpoint out.
	Rollbacks []ModelRollbacker
}

// ModelRollbacker makes an earlier version of an offline model live, for POST
// /v1/models/{name}/rollback. *model.Operator implements it (RollbackLive): it returns an error
// wrapping model.ErrNoSuchModel for a name it does not have, model.ErrVersionRefused for a version
// it will not serve.
type ModelRollbacker interface {
	RollbackLive(ctx context.Context, name string, version int64) error
}

// maxFeatureEventBytes bounds the event of a POST /v1/features/{key} (the server's own body limit,
// Options.MaxBodyBytes, applies too).
const maxFeatureEventBytes = 1 << 20

// defaultStateTimeout is Inspection.StateTimeout's default.
const defaultStateTimeout = 5 * time.Second

// HandleInspection registers the inspection endpoints: GET /v1/watermarks, /v1/state/{key},
// /v1/features/{key} (GET, or POST with an event) and /v1/models. Call it before Start.
//
// The answers are JSON: /v1/watermarks {"partitions": [...]} (200); /v1/models {"operators": [...]}
// (200); /v1/state/{key} the key's stream.KeyState (200), or {"error": "..."} with 404 when another
// instance owns the key's partition or no operator holds anything for the key, 503 when the key's
// task has too many look-ups queued, and 500 on any other failure (not started, a timeout, an
// operator's error); /v1/features/{key} as featuresHandler says. The key is the path segment after
// /v1/state/ or /v1/features/, percent-decoded, so a key with a slash is written %2F.
func (s *Server) HandleInspection(in Inspection) {
	if in.Watermarks != nil {
		s.Handle("GET /v1/watermarks", watermarksHandler(in.Watermarks))
	}
	if in.State != nil {
		timeout := in.StateTimeout
		if timeout <= 0 {
			timeout = defaultStateTimeout
		}
		s.Handle("GET /v1/state/{key}", stateHandler(in.State, timeout))
	}
	if in.Features != nil {
		timeout := in.StateTimeout
		if timeout <= 0 {
			timeout = defaultStateTimeout
		}
		h := featuresHandler(in.Features, timeout)
		s.Handle("GET /v1/features/{key}", h)
		s.Handle("POST /v1/features/{key}", h)
	}
	s.Handle("GET /v1/models", modelsHandler(in.Models))
	if len(in.Rollbacks) > 0 {
		s.Handle("POST /v1/models/{name}/rollback", rollbackHandler(in.Rollbacks))
	}
}

// rollbackHandler: POST /v1/models/{name}/rollback?version=V makes version V of the offline model
// live (published to the versions topic; every instance swaps at its next commit). 200 with
// {"model","live"}; 400 for a missing or bad version; 404 for a model that is not an offline
// model of the pipeline; 409 for a version that is refused (not in the versions topic, or a model
// that does not fit the pipeline); 500 otherwise.
func rollbackHandler(ops []ModelRollbacker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name := req.PathValue("name")
		v, err := strconv.ParseInt(req.URL.Query().Get("version"), 10, 64)
		if err != nil || v < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "give ?version=V, a version of 0 or more"})
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), 30*time.Second)
		defer cancel()
		for _, op := range ops {
			err = op.RollbackLive(ctx, name, v)
			if !errors.Is(err, model.ErrNoSuchModel) {
				break
			}
		}
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, map[string]any{"model": name, "live": v})
		case errors.Is(err, model.ErrNoSuchModel):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case errors.Is(err, model.ErrVersionRefused):
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		default:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		}
	})
}

func watermarksHandler(src WatermarkReporter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"partitions": src.Watermarks()})
	})
}

func stateHandler(src KeyInspector, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), timeout)
		defer cancel()
		ks, err := src.Inspect(ctx, []byte(req.PathValue("key")))
		switch {
		case errors.Is(err, stream.ErrNotOwned):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case errors.Is(err, stream.ErrLookupsBusy):
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		case !ks.Found():
			writeJSON(w, http.StatusNotFound, map[string]string{
				"error": fmt.Sprintf("no state for key %q on partition %d: no event with this key is in an open window", ks.Key, ks.Partition),
			})
		default:
			writeJSON(w, http.StatusOK, ks)
		}
	})
}

// featuresHandler answers /v1/features/{key}: the key's stream.KeyFeatures (200); 404 when another
// instance owns the key's partition, or, without an event, when no window holds anything for the
// key; 400 for a bad query (at, a key that differs from the event's); 422 for an event the pipeline
// would reject; 503 when the key's task has too many look-ups queued; 500 otherwise. The event, if any, is the body of a POST or the event query
// parameter of a GET: one source record's value. at (RFC 3339 or Unix ms) sets the event time.
func featuresHandler(src FeatureLookup, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var at int64
		if v := req.URL.Query().Get("at"); v != "" {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				at = ms
			} else if ts, err := time.Parse(time.RFC3339Nano, v); err == nil {
				at = ts.UnixMilli()
			} else {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("at %q is neither RFC 3339 nor Unix milliseconds", v)})
				return
			}
		}
		var event []byte
		if req.Method == http.MethodPost {
			b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxFeatureEventBytes))
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "reading the event: " + err.Error()})
				return
			}
			event = b
		} else if req.URL.Query().Has("event") {
			event = []byte(req.URL.Query().Get("event"))
		}
		ctx, cancel := context.WithTimeout(req.Context(), timeout)
		defer cancel()
		kf, err := src.Features(ctx, []byte(req.PathValue("key")), event, at)
		var rejected *stream.EventRejectedError
		var mismatch *stream.KeyMismatchError
		switch {
		case errors.Is(err, stream.ErrNotOwned):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case errors.Is(err, stream.ErrLookupsBusy):
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		case errors.As(err, &rejected):
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": err.Error(), "reason": string(rejected.Rejection.Reason)})
		case errors.As(err, &mismatch):
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		case !kf.Found && !kf.WithEvent:
			writeJSON(w, http.StatusNotFound, map[string]string{
				"error": fmt.Sprintf("no features for key %q on partition %d: no event with this key is in an open window", kf.Key, kf.Partition),
			})
		default:
			writeJSON(w, http.StatusOK, kf)
		}
	})
}

func modelsHandler(models []ModelViewer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		views := []model.View{} // [] without model operators, not null
		for _, m := range models {
			views = append(views, m.View())
		}
		writeJSON(w, http.StatusOK, map[string]any{"operators": views})
	})
}

// writeJSON answers with v as indented JSON. An encoding error can only be reported by the broken
// body: the status line is out by then.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

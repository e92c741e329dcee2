package stream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// Schema registry.
//
// Avro and Protobuf records are written in Confluent's wire format: a magic byte 0, the schema's
// id in the registry (4 bytes, big endian), for Protobuf the message indexes, then the payload.
// The wires look each id up once (GET /schemas/ids/{id}, references through
// /subjects/{subject}/versions/{version}), compile it into a plan for the declared paths and keep
// the plan for the life of the process; a record with a new id (the producer moved to a new
// version of its subject: a field added, removed, a default changed) is read with its own
// schema, without a restart. Only the standard REST API is used, so Confluent Schema Registry,
// Apicurio's ccompat API and Redpanda's registry all serve.
//
// What the registry answers decides what becomes of a record:
//   - the schema: its plan reads the record;
//   - "not found" (HTTP 404): the record is a dead letter (unknown_schema), and so is every later
//     record with that id (the answer is kept);
//   - nothing, or an error (connection refused, a timeout, HTTP 5xx or 429): the decoder returns
//     an *UnavailableError, which aborts the commit cycle without dead-lettering anything; the
//     runtime starts a new session after a backoff and processes the cycle again, as after a
//     broker outage (outage.go). Records wait, they are not lost: this is backpressure;
//   - HTTP 401 or 403: a configuration error; Run stops with it, naming the registry's answer.

// ErrUnavailable is wrapped by the errors of decoders whose dependency (a schema registry) did
// not answer. The runtime treats them as an outage: the cycle is aborted and processed again
// later, and no record is dead-lettered for it.
var ErrUnavailable = errors.New("stream: unavailable")

// UnavailableError says which dependency did not answer, and how.
type UnavailableError struct {
	What string // "schema registry: schema id 7"
	Err  error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("stream: %s: unavailable: %v", e.What, e.Err)
}

// Unwrap returns the cause and ErrUnavailable.
func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// Registry is a Confluent-compatible schema registry as the Avro and Protobuf wires use it. It is
// safe for concurrent use once built; share one between the wires of a pipeline.
type Registry struct {
	// Client speaks the registry's REST API; its URLs, authentication and TLS are the config's.
	Client *sr.Client
	// Subject, when set, pins the subject: a record whose schema id is not registered under it
	// is a dead letter (unknown_schema).
	Subject string
	// Version, with Subject, pins one version of the subject: records written with another are
	// dead letters. Zero accepts every version.
	Version int
	// Timeout bounds each request to the registry. Zero means DefaultRegistryTimeout.
	Timeout time.Duration
}

// DefaultRegistryTimeout bounds a request to the schema registry when Registry.Timeout is zero.
const DefaultRegistryTimeout = 5 * time.Second

// maxReferenceDepth bounds the chain of schema references followed (a references b references
// c...), so that a registry with a reference cycle cannot keep a task fetching forever.
const maxReferenceDepth = 32

func (r *Registry) check() error {
	if r == nil || r.Client == nil {
		return errors.New("no schema registry")
	}
	if r.Version != 0 && r.Subject == "" {
		return errors.New("a pinned schema version needs its subject")
	}
	if r.Version < 0 || r.Timeout < 0 {
		return errors.New("negative registry version or timeout")
	}
	return nil
}

// call runs one request with the registry's timeout and sorts its error: nil, a *Rejection
// (not found), an *UnavailableError, or a permanent error (refused credentials).
func (r *Registry) call(what string, do func(ctx context.Context) error) error {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = DefaultRegistryTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := do(ctx)
	if err == nil {
		return nil
	}
	var re *sr.ResponseError
	if errors.As(err, &re) {
		switch re.StatusCode {
		case http.StatusNotFound:
			return reject(ReasonUnknownSchema, "", "%s: the schema registry has no such schema (%s)", what, clip([]byte(re.Error())))
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("stream: schema registry refused %s (HTTP %d: %s): check source.registry's credentials", what, re.StatusCode, re.Error())
		}
	}
	return &UnavailableError{What: "schema registry: " + what, Err: err}
}

// fetch returns the schema of id with every schema it references, dependencies first, after
// checking that id is allowed by the pinned subject and version.
func (r *Registry) fetch(id int) (sr.Schema, []namedSchema, error) {
	what := fmt.Sprintf("schema id %d", id)
	var s sr.Schema
	if err := r.call(what, func(ctx context.Context) (err error) { s, err = r.Client.SchemaByID(ctx, id); return }); err != nil {
		return s, nil, err
	}
	if r.Subject != "" {
		var vs []sr.SubjectVersion
		if err := r.call(what+" versions", func(ctx context.Context) (err error) { vs, err = r.Client.SchemaVersionsByID(ctx, id); return }); err != nil {
			var rj *Rejection
			if !errors.As(err, &rj) {
				return s, nil, err
			}
			vs = nil // no versions: not under the subject
		}
		ok := false
		for _, v := range vs {
			if v.Subject == r.Subject && (r.Version == 0 || v.Version == r.Version) {
				ok = true
			}
		}
		if !ok {
			if r.Version != 0 {
				return s, nil, reject(ReasonUnknownSchema, "", "%s is not version %d of subject %s (source.registry pins it)", what, r.Version, r.Subject)
			}
			return s, nil, reject(ReasonUnknownSchema, "", "%s is not registered under subject %s (source.registry.subject)", what, r.Subject)
		}
	}
	var refs []namedSchema
	seen := map[string]bool{}
	if err := r.references(s.References, 0, seen, &refs); err != nil {
		return s, nil, err
	}
	return s, refs, nil
}

// namedSchema is a referenced schema: Name is the reference's name (an Avro type's full name, a
// Protobuf import path).
type namedSchema struct {
	Name   string
	Schema sr.Schema
}

func (r *Registry) references(refs []sr.SchemaReference, depth int, seen map[string]bool, out *[]namedSchema) error {
	for _, ref := range refs {
		key := fmt.Sprintf("%s/%d", ref.Subject, ref.Version)
		if seen[key] {
			continue
		}
		seen[key] = true
		if depth >= maxReferenceDepth {
			return reject(ReasonUnknownSchema, "", "schema references nest deeper than %d", maxReferenceDepth)
		}
		what := fmt.Sprintf("reference %s (subject %s version %d)", ref.Name, ref.Subject, ref.Version)
		var ss sr.SubjectSchema
		if err := r.call(what, func(ctx context.Context) (err error) {
			ss, err = r.Client.SchemaByVersion(ctx, ref.Subject, ref.Version)
			return
		}); err != nil {
			return err
		}
		if err := r.references(ss.References, depth+1, seen, out); err != nil {
			return err
		}
		*out = append(*out, namedSchema{Name: ref.Name, Schema: ss.Schema})
	}
	return nil
}

// confluentHeader splits a Confluent-framed value into its schema id and the rest.
func confluentHeader(b []byte) (int, []byte, *Rejection) {
	if len(b) < 5 {
		return 0, nil, reject(ReasonBadWireFormat, "", "%d bytes: shorter than the 5-byte Confluent header (magic byte 0, schema id)", len(b))
	}
	if b[0] != 0 {
		return 0, nil, reject(ReasonBadWireFormat, "", "magic byte is %d, not 0: not Confluent's wire format", b[0])
	}
	return int(binary.BigEndian.Uint32(b[1:5])), b[5:], nil
}

// maxRememberedSchemas bounds the schema ids a wire remembers as unusable (not found, not under
// the pinned subject): a stream of records with made-up ids must not grow memory for ever. Past
// it they are forgotten and asked again.
const maxRememberedSchemas = 4096

// compiled is one schema id's outcome: its plan, or the rejection its records get.
type compiled[P any] struct {
	plan P
	rej  *Rejection
}

// schemaCache holds the compiled schemas of one wire, shared by its tasks' decoders.
type schemaCache[P any] struct {
	reg     *Registry
	compile func(id int, s sr.Schema, refs []namedSchema) (P, *Rejection)

	mu       sync.Mutex
	byID     map[int]compiled[P]
	rejected int
}

func newSchemaCache[P any](reg *Registry, compile func(int, sr.Schema, []namedSchema) (P, *Rejection)) *schemaCache[P] {
	return &schemaCache[P]{reg: reg, compile: compile, byID: map[int]compiled[P]{}}
}

// get returns id's outcome, asking the registry the first time. It returns an error only when
// the registry did not answer (or refused us); the caller's decoder then fails the cycle.
func (c *schemaCache[P]) get(id int) (compiled[P], error) {
	c.mu.Lock()
	e, ok := c.byID[id]
	c.mu.Unlock()
	if ok {
		return e, nil
	}
	// Not under the lock: a slow registry must not stall the tasks whose schemas are known. Two
	// tasks may fetch the same id at once; both compile the same plan.
	s, refs, err := c.reg.fetch(id)
	if err != nil {
		var rj *Rejection
		if !errors.As(err, &rj) {
			return e, err
		}
		e = compiled[P]{rej: rj}
	} else {
		e.plan, e.rej = c.compile(id, s, refs)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.rej != nil {
		if c.rejected >= maxRememberedSchemas {
			for k, v := range c.byID {
				if v.rej != nil {
					delete(c.byID, k)
				}
			}
			c.rejected = 0
		}
		c.rejected++
	}
	c.byID[id] = e
	return e, nil
}

// localSchemas is one decoder's copy of the ids it has met, looked up without a lock.
type localSchemas[P any] struct {
	shared *schemaCache[P]
	byID   map[int]compiled[P]
}

func (l *localSchemas[P]) get(id int) (compiled[P], error) {
	if e, ok := l.byID[id]; ok {
		return e, nil
	}
	e, err := l.shared.get(id)
	if err != nil {
		return e, err
	}
	if l.byID == nil || len(l.byID) >= maxRememberedSchemas {
		l.byID = map[int]compiled[P]{}
	}
	l.byID[id] = e
	return e, nil
}

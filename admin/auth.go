package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Token rules: long enough not to be guessed over the network, and made of the characters an
// Authorization header carries as they are.
const (
	// MinTokenLen is the shortest token accepted, in bytes. `openssl rand -hex 32` gives 64.
	MinTokenLen = 16
	// MaxTokenLen is the longest: it must fit in a request header well under MaxHeaderBytes.
	MaxTokenLen = 4096
)

// ErrBadToken is matched by the errors of ParseToken.
var ErrBadToken = errors.New("admin: bad token")

// ParseToken checks a bearer token as an operator writes it in a file or an environment variable:
// surrounding white space (a file's final newline) is dropped, and what is left must be
// MinTokenLen to MaxTokenLen visible ASCII characters. The error never contains the token.
func ParseToken(b []byte) (string, error) {
	s := strings.Trim(string(b), " \t\r\n")
	if len(s) < MinTokenLen {
		return "", fmt.Errorf("%w: %d characters, at least %d are needed (e.g. openssl rand -hex 32)", ErrBadToken, len(s), MinTokenLen)
	}
	if len(s) > MaxTokenLen {
		return "", fmt.Errorf("%w: %d characters, at most %d are allowed", ErrBadToken, len(s), MaxTokenLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return "", fmt.Errorf("%w: character %d is not visible ASCII (spaces, control characters and non-ASCII cannot be sent in a header as they are)", ErrBadToken, i+1)
		}
	}
	return s, nil
}

// tokenDigest is a token's SHA-256. Requests are compared by digest, in constant time: comparing
// digests of equal length leaks neither the token's bytes nor its length through timing.
type tokenDigest [sha256.Size]byte

func digest(s string) tokenDigest { return sha256.Sum256([]byte(s)) }

// newTokenFile reads the token in Options.TokenFile, again whenever the file changes.
func newTokenFile(path string, log *slog.Logger, failures prometheus.Counter) *reloader[tokenDigest] {
	r := &reloader[tokenDigest]{what: "token", paths: []string{path}, log: log, failures: failures}
	r.parse = func() (tokenDigest, error) {
		tok, err := readTokenFile(path)
		return digest(tok), err
	}
	return r
}

// readTokenFile reads and checks the token in a file.
func readTokenFile(path string) (string, error) {
	b, err := readFile(path, 64<<10)
	if err != nil {
		return "", err
	}
	tok, err := ParseToken(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return tok, nil
}

// authenticator guards every endpoint but the open ones: a request must carry the bearer token
// (when one is configured) and a verified client certificate (when a client CA is). It runs before
// the router, so that an unauthenticated client learns nothing, not even which paths exist.
type authenticator struct {
	token        func() tokenDigest // nil: no token
	clientCerts  bool
	open         map[string]bool
	unauthorized prometheus.Counter
}

// on reports whether any credential is required.
func (a *authenticator) on() bool { return a.token != nil || a.clientCerts }

func (a *authenticator) wrap(h http.Handler) http.Handler {
	if !a.on() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.open[r.URL.Path] {
			h.ServeHTTP(w, r)
			return
		}
		if a.clientCerts && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			a.deny(w, `Bearer realm="streamd"`, "a client certificate signed by admin.tls.client_ca_file is required\n")
			return
		}
		if a.token != nil {
			given, ok := bearer(r.Header.Get("Authorization"))
			if !ok {
				a.deny(w, `Bearer realm="streamd"`, "a bearer token is required (Authorization: Bearer <token>)\n")
				return
			}
			want, got := a.token(), digest(given)
			if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
				a.deny(w, `Bearer realm="streamd", error="invalid_token"`, "the bearer token is not valid\n")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (a *authenticator) deny(w http.ResponseWriter, challenge, msg string) {
	a.unauthorized.Inc()
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(msg))
}

// bearer returns the token of an "Authorization: Bearer <token>" header (RFC 6750; the scheme is
// case-insensitive).
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimLeft(tok, " ")
	return tok, tok != ""
}

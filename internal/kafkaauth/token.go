package kafkaauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// TokenSource hands out the bearer token for an OAUTHBEARER authentication.
type TokenSource interface {
	// Token returns a token that is valid now. It is called for every new connection and every
	// re-authentication, from several goroutines at once.
	Token(ctx context.Context) (string, error)
}

// MaxTokenBytes bounds a token: a JWT is a few kilobytes.
const MaxTokenBytes = 64 << 10

// TokenFile is a TokenSource that reads the token from a file, written by something else (a
// sidecar, a Kubernetes projected service-account token, an operator's script) that renews it
// before it expires. The file is read again when its modification time or size changes; else the
// token read last is handed out.
type TokenFile struct {
	path string
	now  func() time.Time

	mu      sync.Mutex
	modTime time.Time
	size    int64
	token   string
	expiry  time.Time // the token's exp claim, zero when it has none
}

// NewTokenFile returns a TokenFile reading path. It does not read the file yet.
func NewTokenFile(path string) *TokenFile { return &TokenFile{path: path, now: time.Now} }

// Token returns the file's token. The file must hold one token (a line break after it is
// ignored). When the token is a JWT with an exp claim in the past, Token returns an error saying
// so, rather than a token the broker refuses with only "invalid_token".
func (f *TokenFile) Token(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		return "", fmt.Errorf("kafkaauth: token file: %w", err)
	}
	if f.token == "" || !fi.ModTime().Equal(f.modTime) || fi.Size() != f.size {
		data, err := readSmallFile(f.path, MaxTokenBytes)
		if err != nil {
			return "", err
		}
		tok := string(bytes.TrimSpace(data))
		if tok == "" {
			return "", fmt.Errorf("kafkaauth: token file %s is empty", f.path)
		}
		if strings.ContainsAny(tok, " \t\r\n\x00\x01") {
			return "", fmt.Errorf("kafkaauth: token file %s holds more than one token (it has white space or control characters)", f.path)
		}
		f.token, f.modTime, f.size = tok, fi.ModTime(), fi.Size()
		f.expiry, _ = jwtExpiry(tok)
	}
	if !f.expiry.IsZero() && !f.now().Before(f.expiry) {
		return "", fmt.Errorf("kafkaauth: the token in %s expired at %s: whatever writes the file has not renewed it", f.path, f.expiry.UTC().Format(time.RFC3339))
	}
	return f.token, nil
}

// jwtExpiry returns the exp claim of a JWT (header.payload.signature, base64url without padding),
// and false when tok is not a JWT or has no exp: an opaque token is passed on as it is.
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil || *claims.Exp <= 0 || *claims.Exp > 1e11 {
		return time.Time{}, false
	}
	sec := int64(*claims.Exp)
	return time.Unix(sec, int64((*claims.Exp-float64(sec))*1e9)), true
}

package kafkaauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/test/kafkatest"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	env := func(name string) (string, bool) {
		v, ok := map[string]string{"PW": "from-env", "EMPTY": ""}[name]
		return v, ok
	}
	for _, tc := range []struct {
		name, content string
		s             Secret
		want, err     string
	}{
		{name: "env", s: Secret{Env: "PW", LookupEnv: env}, want: "from-env"},
		{name: "env unset", s: Secret{Env: "NOPE", LookupEnv: env}, err: "environment variable NOPE is not set"},
		{name: "env empty", s: Secret{Env: "EMPTY", LookupEnv: env}, err: "environment variable EMPTY is not set"},
		{name: "file", content: "s3cret\n", s: Secret{File: file}, want: "s3cret"},
		{name: "file with CRLF", content: "s3cret\r\n", s: Secret{File: file}, want: "s3cret"},
		{name: "file keeps inner spaces", content: " a b \n", s: Secret{File: file}, want: " a b "},
		{name: "empty file", content: "\n", s: Secret{File: file}, err: "is empty"},
		{name: "oversized file", content: strings.Repeat("x", MaxSecretBytes+1), s: Secret{File: file}, err: "larger than"},
		{name: "missing file", s: Secret{File: filepath.Join(dir, "missing")}, err: "no such file"},
		{name: "none", err: "no secret configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.content != "" {
				writeFile(t, file, tc.content)
			}
			got, err := tc.s.Read()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Read() = %q, %v; want an error with %q", got, err, tc.err)
				}
				if shown := strings.TrimSpace(tc.content[:min(len(tc.content), 20)]); shown != "" && strings.Contains(err.Error(), shown) {
					t.Errorf("the error shows the file's content: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Read() = %q, %v; want %q", got, err, tc.want)
			}
			if strings.Contains(tc.s.String(), got) {
				t.Errorf("String() = %q shows the secret", tc.s.String())
			}
		})
	}
}

func TestSecretFileIsReadAgain(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pw")
	writeFile(t, file, "one")
	s := Secret{File: file}
	if got, _ := s.Read(); got != "one" {
		t.Fatalf("Read() = %q, want one", got)
	}
	writeFile(t, file, "two")
	if got, _ := s.Read(); got != "two" {
		t.Fatalf("after a rotation Read() = %q, want two", got)
	}
}

func jwt(sub string, exp time.Time) string {
	return kafkatest.UnsecuredJWT(map[string]any{"sub": sub, "iat": exp.Add(-time.Hour).Unix(), "exp": exp.Unix()})
}

func TestTokenFile(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "token")
	now := time.Now()
	first, second := jwt("first", now.Add(time.Hour)), jwt("second", now.Add(2*time.Hour))
	writeFile(t, file, first+"\n")
	src := NewTokenFile(file)
	if got, err := src.Token(ctx); err != nil || got != first {
		t.Fatalf("Token() = %q, %v; want the file's token", got, err)
	}

	t.Run("read again when it changes", func(t *testing.T) {
		writeFile(t, file, second)
		// Make the change visible even where the clock's resolution would give the same time.
		if err := os.Chtimes(file, now.Add(time.Minute), now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, err := src.Token(ctx); err != nil || got != second {
			t.Fatalf("after the file changed Token() = %q, %v; want the new token", got, err)
		}
	})
	t.Run("not read again while unchanged", func(t *testing.T) {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		// Same size and modification time: the kept token is handed out.
		writeFile(t, file, strings.Repeat("x", len(second)))
		if err := os.Chtimes(file, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		if got, err := src.Token(ctx); err != nil || got != second {
			t.Fatalf("Token() = %q, %v; want the kept token", got, err)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		writeFile(t, file, jwt("old", now.Add(-time.Minute)))
		if err := os.Chtimes(file, now.Add(2*time.Minute), now.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		_, err := src.Token(ctx)
		if err == nil || !strings.Contains(err.Error(), "expired at") || !strings.Contains(err.Error(), file) {
			t.Fatalf("Token() error = %v; want one saying the token in the file expired", err)
		}
	})
	t.Run("opaque token", func(t *testing.T) {
		writeFile(t, file, "opaque-token")
		if err := os.Chtimes(file, now.Add(3*time.Minute), now.Add(3*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, err := src.Token(ctx); err != nil || got != "opaque-token" {
			t.Fatalf("Token() = %q, %v; want the opaque token as it is", got, err)
		}
	})
	for _, tc := range []struct{ name, content, err string }{
		{"empty", " \n", "is empty"},
		{"two tokens", "a b", "more than one token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, file, tc.content)
			if err := os.Chtimes(file, now.Add(4*time.Minute), now.Add(4*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if _, err := src.Token(ctx); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Token() error = %v; want %q", err, tc.err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if _, err := NewTokenFile(file + ".missing").Token(ctx); err == nil || !strings.Contains(err.Error(), "token file") {
			t.Fatalf("Token() error = %v; want one naming the token file", err)
		}
	})
}

func TestJWTExpiry(t *testing.T) {
	exp := time.Unix(1_900_000_000, 0)
	for _, tc := range []struct {
		name, tok string
		ok        bool
	}{
		{"jwt", jwt("a", exp), true},
		{"no exp", kafkatest.UnsecuredJWT(map[string]any{"sub": "a"}), false},
		{"exp not a number", kafkatest.UnsecuredJWT(map[string]any{"exp": "soon"}), false},
		{"not base64", "a.@@@.c", false},
		{"two parts", "a.b", false},
		{"opaque", "token", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := jwtExpiry(tc.tok)
			if ok != tc.ok || (ok && !got.Equal(exp)) {
				t.Fatalf("jwtExpiry = %v, %v; want %v, %v", got, ok, exp, tc.ok)
			}
		})
	}
}

// tokenEndpoint is an OAuth token endpoint for tests: it checks the client's credentials and
// mints unsecured JWTs valid for lifetime.
type tokenEndpoint struct {
	mu       sync.Mutex
	secret   string
	lifetime time.Duration
	answer   func(w http.ResponseWriter) bool // when set and it returns true, it answered instead
	minted   int
	scopes   []string
}

func (e *tokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.answer != nil && e.answer(w) {
		return
	}
	id, secret, ok := r.BasicAuth()
	if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	if !ok || id != "streamd" || secret != e.secret {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"bad secret `+secret+`"}`)
		return
	}
	e.minted++
	e.scopes = append(e.scopes, r.PostForm.Get("scope"))
	now := time.Now()
	tok := kafkatest.UnsecuredJWT(map[string]any{"sub": id, "iat": now.Unix(), "exp": now.Add(e.lifetime).Unix(), "n": e.minted})
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(e.lifetime.Seconds())})
}

func TestClientCredentials(t *testing.T) {
	ctx := context.Background()
	ep := &tokenEndpoint{secret: "client-s3cret", lifetime: 100 * time.Second}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	secretFile := filepath.Join(t.TempDir(), "secret")
	writeFile(t, secretFile, "client-s3cret\n")
	now := time.Now()
	cc := &ClientCredentials{URL: srv.URL + "/token?tenant=x", ClientID: "streamd", Secret: Secret{File: secretFile}, Scope: "kafka streamd",
		now: func() time.Time { return now }}
	minted := func() int {
		ep.mu.Lock()
		defer ep.mu.Unlock()
		return ep.minted
	}

	first, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if exp, ok := jwtExpiry(first); !ok || exp.Before(time.Now()) {
		t.Fatalf("the endpoint's token %q has no future exp", first)
	}
	if ep.scopes[0] != "kafka streamd" {
		t.Errorf("scope sent = %q, want %q", ep.scopes[0], "kafka streamd")
	}
	t.Run("kept until 80% of its lifetime", func(t *testing.T) {
		now = now.Add(79 * time.Second)
		if got, err := cc.Token(ctx); err != nil || got != first || minted() != 1 {
			t.Fatalf("Token() = %v (minted %d); want the kept token", err, minted())
		}
	})
	var second string
	t.Run("refreshed before it expires", func(t *testing.T) {
		now = now.Add(2 * time.Second) // 81 s: past 80% of 100 s, before the expiry
		second, err = cc.Token(ctx)
		if err != nil || second == first || minted() != 2 {
			t.Fatalf("Token() = %v (minted %d); want a new token", err, minted())
		}
	})
	t.Run("kept token while the endpoint fails", func(t *testing.T) {
		ep.mu.Lock()
		ep.answer = func(w http.ResponseWriter) bool { http.Error(w, "down", http.StatusServiceUnavailable); return true }
		ep.mu.Unlock()
		now = now.Add(90 * time.Second) // past the refresh point of the second token, before its expiry
		if got, err := cc.Token(ctx); err != nil || got != second {
			t.Fatalf("Token() = %v; want the still valid token", err)
		}
		now = now.Add(20 * time.Second) // expired
		_, err := cc.Token(ctx)
		if err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("Token() error = %v; want the endpoint's failure", err)
		}
		if strings.Contains(err.Error(), "tenant") {
			t.Errorf("the error shows the URL's query: %v", err)
		}
		ep.mu.Lock()
		ep.answer = nil
		ep.mu.Unlock()
	})
	t.Run("wrong secret", func(t *testing.T) {
		writeFile(t, secretFile, "wrong-s3cret")
		now = now.Add(time.Hour)
		_, err := cc.Token(ctx)
		if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "invalid_client") ||
			!strings.Contains(err.Error(), "refused the client id and secret") {
			t.Fatalf("Token() error = %v; want the endpoint's refusal in words", err)
		}
		// The endpoint echoes the secret in its description: it must not reach the error.
		if strings.Contains(err.Error(), "wrong-s3cret") {
			t.Fatalf("the error shows the client secret: %v", err)
		}
		writeFile(t, secretFile, "client-s3cret")
	})
}

func TestClientCredentialsAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		err        string // "" for success
		keeps      bool   // whether the token is kept for a second call
	}{
		{name: "expires_in as a string", body: `{"access_token":"abc","token_type":"bearer","expires_in":"3600"}`, keeps: true},
		{name: "lifetime from the JWT", body: `{"access_token":"` + jwt("a", time.Now().Add(time.Hour)) + `"}`, keeps: true},
		{name: "unknown lifetime", body: `{"access_token":"abc"}`},
		{name: "no token", body: `{"token_type":"Bearer"}`, err: "no access_token"},
		{name: "not JSON", body: `<html>`, err: "not the JSON of a token"},
		{name: "not bearer", body: `{"access_token":"abc","token_type":"mac"}`, err: "not Bearer"},
		{name: "token with spaces", body: `{"access_token":"a b"}`, err: "white space"},
		{name: "expired JWT", body: `{"access_token":"` + jwt("a", time.Now().Add(-time.Hour)) + `"}`, err: "already expired"},
		{name: "oauth error", status: http.StatusBadRequest, body: `{"error":"invalid_scope","error_description":"no such scope\n"}`, err: "400 Bad Request: invalid_scope (no such scope )"},
		{name: "oversized", body: `{"access_token":"` + strings.Repeat("a", MaxTokenResponseBytes) + `"}`, err: "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls++
				if tc.status != 0 {
					w.WriteHeader(tc.status)
				}
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			cc := &ClientCredentials{URL: srv.URL, ClientID: "id", Secret: Secret{Env: "S", LookupEnv: func(string) (string, bool) { return "test-secret", true }}}
			_, err := cc.Token(context.Background())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Token() error = %v; want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cc.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 1, false: 2}[tc.keeps]; calls != want {
				t.Fatalf("two Token calls made %d requests, want %d", calls, want)
			}
		})
	}
}

func TestClientCredentialsUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	cc := &ClientCredentials{URL: url + "/token?key=hidden", ClientID: "id", Secret: Secret{Env: "S", LookupEnv: func(string) (string, bool) { return "test-secret", true }}}
	_, err := cc.Token(context.Background())
	if err == nil || !strings.Contains(err.Error(), "token endpoint "+url+"/token") || strings.Contains(err.Error(), "hidden") {
		t.Fatalf("Token() error = %v; want one naming the endpoint without its query", err)
	}
}

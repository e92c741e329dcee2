package kafkaauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
)

// ClientCredentials is a TokenSource that fetches tokens from an OAuth 2 token endpoint with the
// client-credentials grant (RFC 6749 section 4.4): a POST of grant_type=client_credentials (and
// the scope, when set), the client authenticated with HTTP Basic, as Kafka's own client does.
//
// A token is kept and handed out until 80% of its lifetime has passed (expires_in, else the JWT's
// exp claim); the next Token call then fetches a new one. When that fetch fails while the kept
// token is still valid, the kept token is handed out and the next call tries again, so that a
// short outage of the endpoint does not fail connections. A token whose lifetime is unknown is
// not kept.
type ClientCredentials struct {
	// URL is the token endpoint.
	URL string
	// ClientID and Secret authenticate the client to the endpoint.
	ClientID string
	Secret   Secret
	// Scope is the space-separated scope to ask for; empty asks for none.
	Scope string
	// HTTPClient makes the requests; nil means a client with a 10 s timeout.
	HTTPClient *http.Client

	now func() time.Time // tests move the clock

	mu        sync.Mutex
	token     string
	refreshAt time.Time
	expiresAt time.Time
}

// MaxTokenResponseBytes bounds the endpoint's answer.
const MaxTokenResponseBytes = 1 << 20

// refreshFactor is the part of a token's lifetime after which a new one is fetched.
const refreshFactor = 0.8

// Token returns a token that is valid now: the kept one, or a new one from the endpoint.
func (c *ClientCredentials) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	if c.token != "" && now.Before(c.refreshAt) {
		return c.token, nil
	}
	tok, lifetime, err := c.fetch(ctx)
	if err != nil {
		if c.token != "" && now.Before(c.expiresAt) {
			return c.token, nil // still valid: the next call tries the endpoint again
		}
		return "", err
	}
	c.token, c.refreshAt, c.expiresAt = "", time.Time{}, time.Time{}
	if lifetime > 0 {
		c.token = tok
		c.refreshAt = now.Add(time.Duration(float64(lifetime) * refreshFactor))
		c.expiresAt = now.Add(lifetime)
	}
	return tok, nil
}

func (c *ClientCredentials) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// fetch asks the endpoint for a token and returns it with its lifetime (0 when unknown).
func (c *ClientCredentials) fetch(ctx context.Context) (string, time.Duration, error) {
	secret, err := c.Secret.Read()
	if err != nil {
		return "", 0, fmt.Errorf("kafkaauth: client secret: %w", err)
	}
	where := RedactURL(c.URL)
	form := url.Values{"grant_type": {"client_credentials"}}
	if c.Scope != "" {
		form.Set("scope", c.Scope)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("kafkaauth: token endpoint %s: %w", where, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(c.ClientID, secret)
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, which may carry a query
		}
		return "", 0, fmt.Errorf("kafkaauth: token endpoint %s: %w", where, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxTokenResponseBytes+1))
	if err != nil {
		return "", 0, fmt.Errorf("kafkaauth: token endpoint %s: read the answer: %w", where, err)
	}
	if len(body) > MaxTokenResponseBytes {
		return "", 0, fmt.Errorf("kafkaauth: token endpoint %s: the answer is larger than %d bytes", where, MaxTokenResponseBytes)
	}
	var ans struct {
		AccessToken string          `json:"access_token"`
		TokenType   string          `json:"token_type"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
	}
	jsonErr := json.Unmarshal(body, &ans)
	if resp.StatusCode != http.StatusOK {
		msg := fmt.Sprintf("kafkaauth: token endpoint %s answered %s", where, resp.Status)
		if jsonErr == nil && ans.Error != "" {
			msg += ": " + clean(ans.Error, secret)
			if ans.Description != "" {
				msg += " (" + clean(ans.Description, secret) + ")"
			}
		}
		if resp.StatusCode == http.StatusUnauthorized || ans.Error == "invalid_client" {
			msg += ": the endpoint refused the client id and secret"
		}
		return "", 0, errors.New(msg)
	}
	if jsonErr != nil {
		return "", 0, fmt.Errorf("kafkaauth: token endpoint %s: the answer is not the JSON of a token: %v", where, jsonErr)
	}
	if ans.AccessToken == "" {
		return "", 0, fmt.Errorf("kafkaauth: token endpoint %s: the answer has no access_token", where)
	}
	if strings.ContainsAny(ans.AccessToken, " \t\r\n\x00\x01") {
		return "", 0, fmt.Errorf("kafkaauth: token endpoint %s: the access_token has white space or control characters", where)
	}
	if ans.TokenType != "" && !strings.EqualFold(ans.TokenType, "bearer") {
		return "", 0, fmt.Errorf("kafkaauth: token endpoint %s: token_type is %q, not Bearer", where, clean(ans.TokenType, secret))
	}
	lifetime := expiresIn(ans.ExpiresIn)
	if lifetime == 0 {
		if exp, ok := jwtExpiry(ans.AccessToken); ok {
			lifetime = exp.Sub(c.clock())
		}
	}
	if lifetime < 0 {
		return "", 0, fmt.Errorf("kafkaauth: token endpoint %s: the token it gave has already expired", where)
	}
	return ans.AccessToken, lifetime, nil
}

// expiresIn reads expires_in, a number of seconds (some endpoints send it as a string); 0 when it
// is missing or not a positive number.
func expiresIn(raw json.RawMessage) time.Duration {
	if len(raw) == 0 {
		return 0
	}
	var n float64
	if json.Unmarshal(raw, &n) != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0
		}
		if _, err := fmt.Sscanf(s, "%g", &n); err != nil {
			return 0
		}
	}
	if n <= 0 || n > 10*365*24*3600 {
		return 0
	}
	return time.Duration(n * float64(time.Second))
}

// clean makes text from the endpoint fit for an error message: the secret cut out, control
// characters replaced, at most 200 bytes.
func clean(s, secret string) string {
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "..."
	}
	return s
}

// RedactURL returns the URL without its user information, query and fragment, which may hold
// credentials: the form of a token endpoint's address fit for messages.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

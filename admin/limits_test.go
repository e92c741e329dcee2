package admin

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// dialIdle opens a connection that sends nothing.
func dialIdle(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c: a read returns EOF or a reset, rather than
// timing out.
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// waitOpen waits until the server holds n connections (its accept loop runs on its own goroutine).
func waitOpen(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.limiter.openConns() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %d connections, want %d", s.limiter.openConns(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitIdle waits until the server holds n idle connections.
func waitIdle(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.limiter.mu.Lock()
		idle := s.limiter.idle.Len()
		s.limiter.mu.Unlock()
		if idle == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %d idle connections, want %d", idle, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConnectionCapEvictsIdle: at the cap, a new connection closes the one idle longest (one that
// sent nothing, or half its headers, or sits between keep-alive requests) and is served itself.
func TestConnectionCapEvictsIdle(t *testing.T) {
	const max = 3
	s, reg := startServer(t, Options{MaxConns: max})
	addr := s.Addr()
	silent := dialIdle(t, addr)
	waitOpen(t, s, 1)
	partial := dialIdle(t, addr)
	if _, err := io.WriteString(partial, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	waitOpen(t, s, 2)
	keepAlive := dialIdle(t, addr)
	if _, err := io.WriteString(keepAlive, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(keepAlive), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	resp.Body.Close()
	waitOpen(t, s, 3)
	// The server marks a connection idle again after its response, on its own goroutine; under load
	// that can come after the client has read the response. Wait for it, so that the order of idleness
	// is the one the test means.
	waitIdle(t, s, 3)

	// Three new requests at the cap, each on a connection kept open after it: each closes the oldest
	// idle connection in turn.
	for i, victim := range []struct {
		name string
		c    net.Conn
	}{{"silent", silent}, {"partial headers", partial}, {"keep-alive", keepAlive}} {
		c := dialIdle(t, addr)
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d at the cap: %v %v", i, resp, err)
		}
		resp.Body.Close()
		if !closedByServer(victim.c) {
			t.Fatalf("request %d at the cap did not close the %s connection", i, victim.name)
		}
		if n := s.limiter.openConns(); n != max {
			t.Fatalf("%d connections open, want the cap %d", n, max)
		}
		waitIdle(t, s, max)
	}
	if got := metricSum(t, reg, "streamd_admin_connections_dropped_total"); got != 3 {
		t.Errorf("streamd_admin_connections_dropped_total = %v, want 3 evictions", got)
	}
}

// TestConnectionCapRefusesWhenAllBusy: when every connection is in the middle of a request, a new
// one is closed at once, and counted as refused.
func TestConnectionCapRefusesWhenAllBusy(t *testing.T) {
	const max = 2
	release := make(chan struct{})
	reg := Options{MaxConns: max}
	s, r := startServer(t, reg)
	started := make(chan struct{}, max)
	s.mux.HandleFunc("GET /block", func(w http.ResponseWriter, _ *http.Request) {
		started <- struct{}{}
		<-release
	})
	busy := make([]net.Conn, max)
	for i := range busy {
		busy[i] = dialIdle(t, s.Addr())
		if _, err := io.WriteString(busy[i], "GET /block HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		<-started
	}
	extra := dialIdle(t, s.Addr())
	if !closedByServer(extra) {
		t.Fatal("a connection over the cap, every other one busy, was not closed")
	}
	if got := metricSum(t, r, "streamd_admin_connections_dropped_total"); got != 1 {
		t.Errorf("streamd_admin_connections_dropped_total = %v, want 1 refusal", got)
	}
	close(release)
	for _, c := range busy {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("a busy request after the refusal: %v %v", resp, err)
		}
	}
}

// TestRequestLimits: oversized headers are refused (431); a silent connection is closed after
// ReadHeaderTimeout.
func TestRequestLimits(t *testing.T) {
	s, _ := startServer(t, Options{MaxHeaderBytes: 1 << 10, ReadHeaderTimeout: 200 * time.Millisecond})
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("p", 8<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("8 KiB of headers with MaxHeaderBytes 1KiB = %d, want 431", resp.StatusCode)
	}
	silent := dialIdle(t, s.Addr())
	began := time.Now()
	if !closedByServer(silent) {
		t.Fatal("a silent connection outlived ReadHeaderTimeout (200ms) by 5s")
	}
	t.Logf("silent connection closed after %s", time.Since(began).Round(time.Millisecond))
}

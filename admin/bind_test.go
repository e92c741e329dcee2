package admin

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log sink that the server's goroutines and the test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// holdPort listens on a free loopback port and returns its address and the listener.
func holdPort(t *testing.T) (string, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), ln
}

// TestStartWaitsForABusyPort: the port is held for 500 ms, as a killed predecessor's does, then
// released; Start must wait for it, warn once, and then serve on that very address.
func TestStartWaitsForABusyPort(t *testing.T) {
	addr, held := holdPort(t)
	const hold = 500 * time.Millisecond
	release := time.AfterFunc(hold, func() { held.Close() })
	defer release.Stop()
	var logs syncBuffer
	s := New(Options{Listen: addr, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	began := time.Now()
	if err := s.Start(); err != nil {
		t.Fatalf("Start with the port released after %s: %v", hold, err)
	}
	defer s.Close(context.Background())
	took := time.Since(began)
	if took < hold-50*time.Millisecond {
		t.Errorf("Start returned after %s, before the port was released after %s", took, hold)
	}
	if s.Addr() != addr {
		t.Errorf("Addr = %s, want %s", s.Addr(), addr)
	}
	if code, body := get(t, "http://"+addr+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d WARN lines while waiting for the port, want 1:\n%s", n, logs.String())
	}
	t.Logf("bound after %s", took.Round(time.Millisecond))
}

// TestStartFailsOnAPortHeldTooLong: a port held for longer than BindTimeout fails Start with an
// error that matches ErrAddrInUse and names the address, after about BindTimeout, not sooner and
// not much later.
func TestStartFailsOnAPortHeldTooLong(t *testing.T) {
	for _, bound := range []time.Duration{400 * time.Millisecond, DefaultBindTimeout} {
		t.Run(bound.String(), func(t *testing.T) {
			addr, _ := holdPort(t)
			var logs syncBuffer
			opts := Options{Listen: addr, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			if bound != DefaultBindTimeout {
				opts.BindTimeout = bound
			}
			s := New(opts)
			began := time.Now()
			err := s.Start()
			took := time.Since(began)
			if err == nil {
				s.Close(context.Background())
				t.Fatal("Start succeeded on a port another listener holds")
			}
			if !errors.Is(err, ErrAddrInUse) || !strings.Contains(err.Error(), addr) {
				t.Errorf("Start error = %q, want ErrAddrInUse naming %s", err, addr)
			}
			if took < bound || took > bound+time.Second {
				t.Errorf("Start failed after %s, want about %s", took, bound)
			}
			if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
				t.Errorf("%d WARN lines, want 1:\n%s", n, logs.String())
			}
			t.Logf("failed after %s: %v", took.Round(time.Millisecond), err)
		})
	}
}

// TestStartOtherListenErrorsAtOnce: an address that can never be bound is not retried.
func TestStartOtherListenErrorsAtOnce(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:99999", "no-such-host.invalid:0"} {
		t.Run(addr, func(t *testing.T) {
			began := time.Now()
			err := New(Options{Listen: addr, BindTimeout: 5 * time.Second, InsecureNoAuth: true}).Start()
			if err == nil || errors.Is(err, ErrAddrInUse) {
				t.Fatalf("Start(%s) = %v, want a listen error other than ErrAddrInUse", addr, err)
			}
			if took := time.Since(began); took > 2*time.Second {
				t.Errorf("Start(%s) took %s: it retried an error that retrying cannot fix", addr, took)
			}
		})
	}
}

// TestStartNegativeBindTimeoutTriesOnce: a negative BindTimeout fails at the first refusal.
func TestStartNegativeBindTimeoutTriesOnce(t *testing.T) {
	addr, _ := holdPort(t)
	began := time.Now()
	err := New(Options{Listen: addr, BindTimeout: -1}).Start()
	if !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("Start = %v, want ErrAddrInUse", err)
	}
	if took := time.Since(began); took > 200*time.Millisecond {
		t.Errorf("Start took %s with no retry asked for", took)
	}
}

//go:build linux

package admin

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/streamd/streamd/state"
)

// The flooding clients are this test binary, run again as TestFloodClients with these variables.
const (
	floodAddrEnv  = "STREAMD_TEST_FLOOD_ADDR"
	floodConnsEnv = "STREAMD_TEST_FLOOD_CONNS"
)

// TestIdleConnectionFlood is the incident of issue #11: ~19,400 idle keep-alive connections took
// every file descriptor and the daemon exited when Pebble could not open a table. Here 20,000 idle
// connections (half never send anything, half send one keep-alive request and then sit) are
// opened against a server capped at 64, from child processes, so that the descriptors they hold
// are theirs. This process's own descriptor limit is lowered to what it uses plus the cap and some
// room: a server that kept one descriptor per connection would run out after a few hundred. During
// the flood the server must answer /healthz and enforce the token, hold no more than the cap, and
// the process must still open files: a new state store (Pebble) opens and commits.
func TestIdleConnectionFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 20,000 connections (a few seconds)")
	}
	const (
		total    = 20000
		maxConns = 64
		room     = 256 // descriptors for Pebble, the test's own requests, pipes, the Go runtime
	)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// The children raise their soft limit to the hard one (the Go runtime does so at start); each
	// takes as many connections as that allows, less room for its own use.
	perChild := int(min(lim.Max, 1<<20)) - 128
	if perChild < 1000 {
		t.Skipf("the hard descriptor limit is %d: too low to flood from a few processes", lim.Max)
	}
	children := max(2, (total+perChild-1)/perChild)
	perChild = (total + children - 1) / children

	s, reg := startServer(t, Options{MaxConns: maxConns, Token: testToken})
	addr := s.Addr()

	inUse := countFDs(t)
	low := syscall.Rlimit{Cur: uint64(inUse + maxConns + room), Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) })
	t.Logf("this process: %d descriptors in use, soft limit lowered to %d; %d connections from %d processes against a cap of %d",
		inUse, low.Cur, total, children, maxConns)

	began := time.Now()
	var procs []*floodProc
	for i := range children {
		n := min(perChild, total-i*perChild)
		procs = append(procs, startFlood(t, addr, n))
	}
	held := 0
	for _, p := range procs {
		held += p.wait(t)
	}
	t.Logf("%d idle connections opened in %s", held, time.Since(began).Round(time.Millisecond))
	if held != total {
		t.Fatalf("the clients hold %d connections, want %d", held, total)
	}

	// The daemon carries on under the flood.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if code, _, body := request(t, client, "http://"+addr+"/healthz", ""); code != 200 || body != "ok\n" {
		t.Errorf("/healthz during the flood = %d %q", code, body)
	}
	if code, _, _ := request(t, client, "http://"+addr+"/v1/models", ""); code != 401 {
		t.Errorf("/v1/models without the token during the flood = %d, want 401", code)
	}
	if code, _, _ := request(t, client, "http://"+addr+"/v1/models", "Bearer "+testToken); code != 200 {
		t.Errorf("/v1/models with the token during the flood = %d, want 200", code)
	}
	if open := s.limiter.openConns(); open > maxConns {
		t.Errorf("the server holds %d connections, cap %d", open, maxConns)
	}
	if n := countFDs(t); n > int(low.Cur) {
		t.Errorf("%d descriptors open, above the soft limit %d", n, low.Cur)
	}
	// A task opening its state store, as a rebalance makes it do: Pebble opens its files then.
	db, err := state.Open(state.Options{Dir: filepath.Join(t.TempDir(), "p0"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("opening a state store during the flood: %v", err)
	}
	st, err := db.Store("windows")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		st.Set([]byte(fmt.Sprintf("card-%04d", i)), []byte("state"))
	}
	if err := db.Commit(map[string]int64{"windows": 1}); err != nil {
		t.Fatalf("committing state during the flood: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("closing the state store during the flood: %v", err)
	}
	f, err := os.CreateTemp(t.TempDir(), "fd-check")
	if err != nil {
		t.Fatalf("opening a file during the flood: %v", err)
	}
	f.Close()
	dropped := metricSum(t, reg, "streamd_admin_connections_dropped_total")
	if dropped < total-maxConns {
		t.Errorf("streamd_admin_connections_dropped_total = %v, want at least %d (every flooding connection over the cap)", dropped, total-maxConns)
	}
	t.Logf("%v connections dropped by the cap; flood and checks took %s", dropped, time.Since(began).Round(time.Millisecond))
}

// countFDs counts this process's open descriptors.
func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// floodProc is one child process holding flooding connections.
type floodProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func startFlood(t *testing.T, addr string, n int) *floodProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFloodClients$", "-test.count=1")
	cmd.Env = append(os.Environ(), floodAddrEnv+"="+addr, floodConnsEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Killed when the test ends: the kernel closes its connections faster than it would.
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &floodProc{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
}

// wait returns the number of connections the child holds, once it has opened them all.
func (p *floodProc) wait(t *testing.T) int {
	t.Helper()
	for p.out.Scan() {
		line := p.out.Text()
		if rest, ok := strings.CutPrefix(line, "holding "); ok {
			n, err := strconv.Atoi(rest)
			if err != nil {
				t.Fatalf("flooding child: %q", line)
			}
			return n
		}
		if strings.HasPrefix(line, "flood failed") {
			t.Fatalf("flooding child: %s", line)
		}
	}
	t.Fatalf("flooding child exited without opening its connections: %v", p.out.Err())
	return 0
}

// TestFloodClients is the child of TestIdleConnectionFlood: it opens the connections, says how many
// it holds, and holds them until its stdin closes or it is killed.
func TestFloodClients(t *testing.T) {
	addr := os.Getenv(floodAddrEnv)
	if addr == "" {
		t.Skip("run by TestIdleConnectionFlood")
	}
	n, err := strconv.Atoi(os.Getenv(floodConnsEnv))
	if err != nil {
		fmt.Println("flood failed:", err)
		return
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	conns := make([]net.Conn, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	const dialers = 4
	for d := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := d; i < n; i += dialers {
				// From 127.0.0.2 to 127.0.0.17 in turn: one source address would need 20,000 of
				// its 28,000 ephemeral ports, and the kernel's search for a free one slows to a
				// crawl as they fill.
				dialer := net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%16))}}
				c, err := dialer.Dial("tcp", addr)
				if err != nil {
					c, err = net.DialTimeout("tcp", addr, 30*time.Second) // no 127.0.0.x here
				}
				if err == nil && i%2 == 1 {
					// A keep-alive request whose response is never read: the connection then
					// idles between requests, as a keep-alive client's does.
					_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: flood\r\n\r\n")
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Println("flood failed:", firstErr)
		return
	}
	fmt.Printf("holding %d\n", n)
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

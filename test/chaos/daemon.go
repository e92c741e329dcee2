package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// daemon runs the streamd binary on one config, one process at a time, each run logging to its own
// file (run-N.log), and tracks the peak resident memory over all its runs.
type daemon struct {
	bin, config, logDir string

	runs int
	proc *exec.Cmd
	done chan error // receives the current process's exit, once; re-sent by exited

	mu   sync.Mutex
	peak int64 // bytes: the largest VmHWM seen of any run
}

// start starts a new run. The previous one must have exited.
func (d *daemon) start() error {
	d.runs++
	logf, err := os.Create(d.logPath(d.runs))
	if err != nil {
		return err
	}
	cmd := exec.Command(d.bin, "run", "-config", d.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	d.proc, d.done = cmd, make(chan error, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); d.sampleRSS(cmd.Process.Pid, stop) }()
	// The waiter owns the sampler: it stops it and waits for it before reporting the exit.
	go func(done chan error) {
		err := cmd.Wait()
		close(stop)
		wg.Wait()
		logf.Close()
		done <- err
	}(d.done)
	return nil
}

func (d *daemon) logPath(run int) string {
	return filepath.Join(d.logDir, fmt.Sprintf("run-%d.log", run))
}

// exited reports whether the current run has exited, and its exit error (nil for status 0).
func (d *daemon) exited() (bool, error) {
	select {
	case err := <-d.done:
		d.done <- err
		return true, err
	default:
		return false, nil
	}
}

// wait waits up to timeout for the current run to exit; it reports whether it did, and its exit
// error.
func (d *daemon) wait(timeout time.Duration) (bool, error) {
	select {
	case err := <-d.done:
		d.done <- err
		return true, err
	case <-time.After(timeout):
		return false, nil
	}
}

// kill sends SIGKILL to the current run and waits for it to exit.
func (d *daemon) kill() {
	_ = d.proc.Process.Signal(syscall.SIGKILL)
	d.wait(time.Hour)
}

// terminate sends SIGTERM, the clean stop, and returns the exit error; it kills the run if it has
// not exited within timeout.
func (d *daemon) terminate(timeout time.Duration) error {
	_ = d.proc.Process.Signal(syscall.SIGTERM)
	if ok, err := d.wait(timeout); ok {
		return err
	}
	d.kill()
	return fmt.Errorf("streamd did not exit within %s of SIGTERM", timeout)
}

// log returns the current run's log so far.
func (d *daemon) log() string {
	data, _ := os.ReadFile(d.logPath(d.runs))
	return string(data)
}

// peakRSS returns the largest resident set size any run reached, in bytes.
func (d *daemon) peakRSS() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.peak
}

// sampleRSS reads the process's VmHWM (its peak resident set size so far) every 250 ms until stop
// is closed.
func (d *daemon) sampleRSS(pid int, stop <-chan struct{}) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if hwm := vmHWM(pid); hwm > 0 {
			d.mu.Lock()
			d.peak = max(d.peak, hwm)
			d.mu.Unlock()
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// vmHWM returns the VmHWM of /proc/<pid>/status in bytes, or 0 when it cannot be read.
func vmHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

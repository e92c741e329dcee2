package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamd/streamd/test/kafkatest"
)

// readmePipeline returns the README's example pipeline and the shell commands that follow it, as
// a reader copies them: the first ```yaml block under "## A pipeline" and the first ```sh block
// after it, one command per line, comments removed.
func readmePipeline(t *testing.T) (yamlText string, commands []string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## A pipeline")
	if i < 0 {
		t.Fatal(`README.md has no "## A pipeline" section`)
	}
	s = s[i:]
	block := regexp.MustCompile("(?s)```(yaml|sh)\n(.*?)```")
	for _, m := range block.FindAllStringSubmatch(s, -1) {
		switch {
		case m[1] == "yaml" && yamlText == "":
			yamlText = m[2]
		case m[1] == "sh" && yamlText != "" && commands == nil:
			sc := bufio.NewScanner(strings.NewReader(m[2]))
			for sc.Scan() {
				line := sc.Text()
				if j := strings.Index(line, " #"); j >= 0 {
					line = line[:j]
				}
				if line = strings.TrimSpace(line); line != "" {
					commands = append(commands, line)
				}
			}
		}
	}
	if yamlText == "" || len(commands) == 0 {
		t.Fatal("README.md: no yaml block followed by a sh block under \"## A pipeline\"")
	}
	return yamlText, commands
}

// TestReadmeCommandsRunInOrder runs the README's example as a newcomer does: the pipeline saved as
// pipeline.yaml, then each command in the order written, against a broker on KAFKA_BROKERS (always
// an in-process kfake here: the README's topic names are fixed). `streamd run` runs until the
// group has caught up with what gen produced, then gets SIGTERM; every generated record must then
// be exactly one prediction or one dead letter, and every label must have been sent.
func TestReadmeCommandsRunInOrder(t *testing.T) {
	yamlText, commands := readmePipeline(t)
	b := kafkatest.StartFake(t, nil)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pipeline.yaml"), []byte(yamlText), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "KAFKA_BROKERS="+strings.Join(b.Addrs, ","))
	var daemon *exec.Cmd
	var daemonOut bytes.Buffer
	daemonDone := make(chan error, 1)
	ranGen := false
	for _, line := range commands {
		if strings.HasPrefix(line, "make build") {
			// Building is TestMain's job; the line must still put bin/streamd on the PATH.
			if !strings.Contains(line, "export PATH=$PWD/bin:$PATH") {
				t.Fatalf("README build line %q no longer puts bin/ on the PATH; teach this test", line)
			}
			continue
		}
		args := strings.Fields(line)
		if args[0] != "streamd" {
			t.Fatalf("README command %q: this test runs streamd commands only", line)
		}
		cmd := exec.Command(streamdBin, args[1:]...)
		cmd.Dir, cmd.Env = dir, env
		if args[1] == "run" {
			cmd.Stdout, cmd.Stderr = &daemonOut, &daemonOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			daemon = cmd
			go func() { daemonDone <- cmd.Wait() }()
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd = exec.CommandContext(ctx, streamdBin, args[1:]...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("README command %q failed: %v\n%s", line, err, out)
		}
		t.Logf("%s:\n%s", line, lastLines(string(out), 3))
		if args[1] == "gen" {
			ranGen = true
			// Every valid record gets a label; a deliberately broken one has no event to label.
			m := regexp.MustCompile(`done: (\d+) records \((\d+) broken, \d+ fraud\), (\d+) labels`).FindStringSubmatch(string(out))
			if m == nil || atoi(t, m[1])-atoi(t, m[2]) != atoi(t, m[3]) {
				t.Errorf("gen did not send a label for every valid record: %v", m)
			}
		}
	}
	if daemon == nil || !ranGen {
		t.Fatalf("the README's commands %q do not generate data and run the pipeline", commands)
	}
	exited := func() error {
		select {
		case err := <-daemonDone:
			daemonDone <- err
			return &exitError{err: err, out: daemonOut.String()}
		default:
			return nil
		}
	}
	b.WaitCaughtUp(t, "fraud-scoring", "transactions", 2*time.Minute, exited)
	_ = daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-daemonDone:
		if err != nil {
			t.Fatalf("streamd run did not exit cleanly on SIGTERM: %v\n%s", err, lastLines(daemonOut.String(), 20))
		}
	case <-time.After(30 * time.Second):
		_ = daemon.Process.Kill()
		t.Fatal("streamd run did not exit within 30 s of SIGTERM")
	}

	src := b.ReadCommitted(t, "transactions", 30*time.Second)
	preds := b.ReadCommitted(t, "fraud-scores", 30*time.Second)
	dead := b.ReadCommitted(t, "transactions-dlq", 30*time.Second)
	if len(preds)+len(dead) != len(src) || len(preds) == 0 {
		t.Errorf("%d records generated, %d predictions + %d dead letters", len(src), len(preds), len(dead))
	}
	seen := map[string]bool{}
	for _, p := range preds {
		id := jsonField(p.Value, "event_id")
		if seen[id] {
			t.Errorf("two predictions for event %s", id)
		}
		seen[id] = true
	}
}

type exitError struct {
	err error
	out string
}

func (e *exitError) Error() string {
	return "streamd run exited: " + e.err.Error() + "\n" + lastLines(e.out, 20)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// jsonField returns a top-level string field of a JSON object, by a plain scan (the test's
// records are streamd's own output).
func jsonField(v []byte, name string) string {
	s := string(v)
	key := `"` + name + `":"`
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	s = s[i+len(key):]
	return s[:strings.IndexByte(s, '"')]
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

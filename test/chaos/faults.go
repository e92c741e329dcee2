package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// taskDirs returns the state directories of the pipeline's tasks, <state>/<app>/<topic>-<partition>,
// without the directories earlier rebuilds moved aside.
func taskDirs(stateDir, app string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(stateDir, app))
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && !strings.Contains(e.Name(), ".corrupt-") {
			dirs = append(dirs, filepath.Join(stateDir, app, e.Name()))
		}
	}
	return dirs, nil
}

// setImmutable sets (or clears) the immutable attribute on every file and directory under the task
// directories. It is the disk fault: from then on every write, create, rename and sync of Pebble
// fails with EPERM, also on files it already has open, as on a disk that went bad. chmod would not
// do, because the chaos run usually runs as root, whom file modes do not stop; the attribute does
// stop root (it needs CAP_LINUX_IMMUTABLE and a file system with attributes, such as ext4 or xfs).
func setImmutable(dirs []string, on bool) error {
	flag := "-i"
	if on {
		flag = "+i"
	}
	for _, d := range dirs {
		if out, err := exec.Command("chattr", "-R", flag, d).CombinedOutput(); err != nil {
			return fmt.Errorf("chattr -R %s %s: %w: %s", flag, d, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// corruptManifest garbles the MANIFEST of a task directory (every 7th byte flipped), as a bad disk
// block or a careless operator would: Pebble refuses to open it, and state.OpenOrRebuild must move
// the directory aside and rebuild the state from the changelog.
func corruptManifest(dir string) (string, error) {
	ms, err := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	if err != nil || len(ms) == 0 {
		return "", fmt.Errorf("no MANIFEST in %s (%v)", dir, err)
	}
	path := ms[len(ms)-1]
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for i := range b {
		if i%7 == 0 {
			b[i] ^= 0x5a
		}
	}
	return path, os.WriteFile(path, b, 0o644)
}

// countRebuilt counts the task directories that state.OpenOrRebuild moved aside as corrupt.
func countRebuilt(stateDir, app string) int {
	aside, _ := filepath.Glob(filepath.Join(stateDir, app, "*.corrupt-*"))
	return len(aside)
}

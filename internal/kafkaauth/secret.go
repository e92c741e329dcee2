package kafkaauth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxSecretBytes bounds a secret file: a password or a client secret is far smaller, and a larger
// file is the wrong file.
const MaxSecretBytes = 64 << 10

// Secret is a password or a client secret kept outside the config file: in the environment
// variable Env or in the file File (exactly one is set). The zero value holds no secret.
type Secret struct {
	Env  string
	File string
	// LookupEnv reads the environment; nil means os.LookupEnv. Tests replace it.
	LookupEnv func(string) (string, bool)
}

// String says where the secret comes from, never what it is.
func (s Secret) String() string {
	switch {
	case s.Env != "":
		return "environment variable " + s.Env
	case s.File != "":
		return "file " + s.File
	}
	return "no secret"
}

// Read returns the secret. A file is read anew at every call, so that a rotated secret (a
// Kubernetes Secret volume updates its files in place) is used from the next authentication on;
// the line breaks that end it are not part of the secret. An unset variable, an unreadable, empty
// or oversized file are errors that name the variable or the file.
func (s Secret) Read() (string, error) {
	switch {
	case s.Env != "":
		lookup := s.LookupEnv
		if lookup == nil {
			lookup = os.LookupEnv
		}
		v, ok := lookup(s.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("kafkaauth: environment variable %s is not set", s.Env)
		}
		return v, nil
	case s.File != "":
		data, err := readSmallFile(s.File, MaxSecretBytes)
		if err != nil {
			return "", err
		}
		data = bytes.TrimRight(data, "\r\n")
		if len(data) == 0 {
			return "", fmt.Errorf("kafkaauth: secret file %s is empty", s.File)
		}
		return string(data), nil
	}
	return "", errors.New("kafkaauth: no secret configured")
}

// readSmallFile reads a file of at most limit bytes. Its errors name the file, never its content.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kafkaauth: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("kafkaauth: read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("kafkaauth: %s is larger than %d bytes: not a secret or a token", path, limit)
	}
	return data, nil
}

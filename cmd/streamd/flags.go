package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/streamd/streamd/internal/units"
)

// durationFlag reads durations the way configs do (units.ParseDuration: 100ms, 30s, 7d).
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return units.FormatDuration(*f.d)
}

func (f durationFlag) Set(s string) error {
	d, err := units.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

// rateFlag reads a rate such as 5000/s, 2.5k/s or 300/min, in records per second.
type rateFlag struct{ r *float64 }

func (f rateFlag) String() string {
	if f.r == nil {
		return ""
	}
	return strconv.FormatFloat(*f.r, 'f', -1, 64) + "/s"
}

func (f rateFlag) Set(s string) error {
	r, err := units.ParseRate(s)
	if err != nil {
		return err
	}
	*f.r = r
	return nil
}

// newFlagSet is a command's flag set, whose -h names the command, says what it does and lists
// every flag with its default.
func newFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: streamd %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/units"
)

// Config holds the runtime's settings. The zero value of every field means its default, which
// EnsureDefaults fills in; Validate names every field that is out of bounds.
type Config struct {
	// Brokers are the Kafka seed brokers, host:port. Required.
	Brokers []string
	// InstanceID identifies this instance in the group: it is the static group.instance.id, so a
	// restarted instance takes its partitions back at once instead of waiting out the session timeout,
	// and it suffixes the transactional id, so a restarted instance fences its dead predecessor's open
	// transaction. Two live instances must never share it. Default: the host name.
	InstanceID string
	// CommitInterval closes a commit cycle this long after it began. Default 100ms.
	CommitInterval time.Duration
	// CommitRecords closes a commit cycle once this many records were polled, if that comes first.
	// Default 20000.
	CommitRecords int
	// TransactionTimeout is the broker-side timeout of a transaction: how long read_committed readers
	// can stall behind an instance that died with a transaction open. Default 15s.
	TransactionTimeout time.Duration
	// SessionTimeout is the group session timeout. Default 15s.
	SessionTimeout time.Duration
	// RebalanceTimeout bounds how long members may take to rejoin in a rebalance. Default 30s.
	RebalanceTimeout time.Duration
	// ShutdownTimeout bounds the final commit when Run's context is cancelled; past it the open
	// transaction is abandoned to the broker's transaction timeout. Default 10s; at most 10m.
	ShutdownTimeout time.Duration
	// LeaveGroupOnShutdown makes a clean shutdown leave the consumer group, so that the instance's
	// partitions move at once. Static members (InstanceID) do not leave by default, so that a
	// restart takes its partitions back without a rebalance; set this when scaling down.
	LeaveGroupOnShutdown bool
	// CreateTopics creates missing output topics with the source topic's partition count.
	CreateTopics bool
	// ReplicationFactor for created topics; -1 (the default) takes the broker's default.
	// Otherwise at least 1.
	ReplicationFactor int16
	// MaxRecordBytes is the largest record the runtime produces or fetches. Default 1MiB.
	MaxRecordBytes int
	// DeadLetterMaxBytes truncates larger dead-letter values (the streamd-original-bytes header keeps
	// the size; the source offset header points at the full record). Default 256KiB, or
	// MaxRecordBytes when that is smaller.
	DeadLetterMaxBytes int
	// StateDir is where tasks keep their Pebble state: <StateDir>/<pipeline>/<topic>-<partition>.
	// Required when an operator is stateful.
	StateDir string
	// StandbyReplicas is how many other instances keep a warm copy of each partition's state,
	// fed from the changelogs into their local Pebble, so that a partition assigned to one of them
	// after a failure replays only the changelog's tail (state/standby says which instances and
	// what happens with more instances than StandbyReplicas+1). Only for stateful pipelines; each
	// replica costs the disk of its partition's state and a consumer. Default 0 (none); at most 8.
	StandbyReplicas int
	// MemoryBudget is the resident memory the instance may use, for the whole process. The runtime
	// sizes its fetch and produce buffers, Pebble's block cache and memtables, the record cache and
	// the open commit cycle's share from it (memoryPlan in memory.go gives the split); Run sets the
	// Go runtime's soft memory limit (debug.SetMemoryLimit) to what the budget leaves the Go heap,
	// unless the GOMEMLIMIT environment variable is set, and pauses fetching, ending the open cycle
	// early, while the live heap is over a high-water mark of that limit. So a backlog of any size is
	// processed within it; nothing is dropped. The memory limit is the process's: a process that
	// runs several runtimes, or other work besides, sets GOMEMLIMIT itself. Default 384MiB, which
	// fits a 512MiB pod limit; at least 64MiB.
	MemoryBudget int64
	// StateCacheBytes is the Pebble block cache shared by every task. Default MemoryBudget/12
	// (32MiB at the default budget); at least 1MiB.
	StateCacheBytes int64
	// RecordCacheBytes is the memory for caches of committed state values in front of Pebble, for
	// the whole instance: each task gets its share (by the source's partition count). Default
	// MemoryBudget/24 (16MiB at the default budget); negative disables.
	RecordCacheBytes int64
	// MaxOutOfOrderness is how far behind the latest event time an event may be and still count as
	// on time: watermark = max event time seen - MaxOutOfOrderness. Default 5s.
	MaxOutOfOrderness time.Duration
	// IdleTimeout: a partition that has been caught up to its last stable offset and silent for
	// this long is idle, and its watermark follows the wall clock (minus MaxOutOfOrderness), so that
	// windows on a quiet key space still close. Default 30s; negative disables.
	IdleTimeout time.Duration
	// ClientOpts are extra franz-go options (TLS, SASL, dialer, ...), applied after streamd's own.
	// A SASL mechanism that cannot get its credentials (an unreadable secret, a token endpoint
	// that refuses) should return an error wrapping ErrCredentials, so that Run reports it as an
	// authentication failure (see AuthError).
	ClientOpts []kgo.Opt
	// AuthRetryTimeout bounds how long Run keeps trying while the brokers refuse the connection's
	// TLS or SASL (an *AuthError), at start-up and after a session failed: a few tries over this
	// long ride out a credential being rolled out, then Run returns the AuthError instead of
	// retrying for ever. Default 15s; 1s to 10m.
	AuthRetryTimeout time.Duration
	// AuthAdvice, when set, says what to check for each kind of AuthError in the terms the
	// operator configured the connection in (config/ names the file's keys); the default advice
	// speaks of users, passwords and certificates.
	AuthAdvice func(AuthFailure) string
	// Logger receives the runtime's logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the runtime's metrics. Default: a private registry (metrics unexported).
	Registerer prometheus.Registerer
}

// Defaults that EnsureDefaults fills in. They are the defaults of the YAML file too: config/
// compiles the file into a Config and lets EnsureDefaults fill what the file left unset.
const (
	DefaultCommitInterval     = 100 * time.Millisecond
	DefaultCommitRecords      = 20000
	DefaultTransactionTimeout = 15 * time.Second
	DefaultSessionTimeout     = 15 * time.Second
	DefaultRebalanceTimeout   = 30 * time.Second
	DefaultShutdownTimeout    = 10 * time.Second
	DefaultMaxRecordBytes     = 1 << 20
	DefaultDeadLetterMaxBytes = 256 << 10
	DefaultMemoryBudget       = 384 << 20
	DefaultStateCacheBytes    = DefaultMemoryBudget / 12
	DefaultRecordCacheBytes   = DefaultMemoryBudget / 24
	DefaultMaxOutOfOrderness  = 5 * time.Second
	DefaultIdleTimeout        = 30 * time.Second
	DefaultAuthRetryTimeout   = 15 * time.Second
	// maxStandbyReplicas bounds Config.StandbyReplicas: each replica holds a copy of its partition's
	// state on disk, and more copies than this buy nothing a replicated changelog does not.
	maxStandbyReplicas = 8
)

// EnsureDefaults fills in every unset field.
func (c *Config) EnsureDefaults() {
	if c.InstanceID == "" {
		c.InstanceID, _ = os.Hostname()
		if c.InstanceID == "" {
			c.InstanceID = "streamd"
		}
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.CommitRecords == 0 {
		c.CommitRecords = DefaultCommitRecords
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = DefaultTransactionTimeout
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = DefaultRebalanceTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if c.DeadLetterMaxBytes == 0 {
		c.DeadLetterMaxBytes = min(DefaultDeadLetterMaxBytes, c.MaxRecordBytes)
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = DefaultMemoryBudget
	}
	if c.StateCacheBytes == 0 {
		c.StateCacheBytes = c.MemoryBudget / 12
	}
	if c.RecordCacheBytes == 0 {
		c.RecordCacheBytes = c.MemoryBudget / 24
	}
	if c.MaxOutOfOrderness == 0 {
		c.MaxOutOfOrderness = DefaultMaxOutOfOrderness
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.AuthRetryTimeout == 0 {
		c.AuthRetryTimeout = DefaultAuthRetryTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
}

// FieldError is one field of a Config that Validate refuses. Validate joins one per problem, so
// that a caller that compiles its own configuration into a Config (config/ for the YAML file) can
// find each one with errors.As and name the bad setting in its own words.
type FieldError struct {
	// Field is the Config field's name, e.g. "CommitInterval".
	Field string
	// Value is the field's value as people write it: durations like 100ms, sizes like 1MiB.
	Value string
	// Rule is the bound the value breaks, e.g. "is outside [1ms, 1m]". Other fields it names appear
	// by their Config names, which are listed in Refs.
	Rule string
	// Refs are the other Config fields Rule names, e.g. ["CommitInterval"] for a transaction
	// timeout that must be longer than the commit interval.
	Refs []string
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return "stream: Config." + e.Field + ": " + e.Rule
	}
	return "stream: Config." + e.Field + ": " + e.Value + " " + e.Rule
}

// Validate reports every out-of-bounds field at once, as one *FieldError each. Call EnsureDefaults
// first.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, value, rule string, refs ...string) {
		errs = append(errs, &FieldError{Field: field, Value: value, Rule: rule, Refs: refs})
	}
	dur, size := units.FormatDuration, func(n int) string { return units.FormatBytes(int64(n)) }
	between := func(field string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			bad(field, dur(d), fmt.Sprintf("is outside [%s, %s]", dur(lo), dur(hi)))
		}
	}
	if len(c.Brokers) == 0 {
		bad("Brokers", "", "at least one broker is required (host:port)")
	}
	if !nameRE.MatchString(c.InstanceID) {
		bad("InstanceID", fmt.Sprintf("%q", c.InstanceID), "is not 1 to 200 letters, digits, '.', '_' or '-'")
	}
	between("CommitInterval", c.CommitInterval, time.Millisecond, time.Minute)
	if c.CommitRecords < 1 {
		bad("CommitRecords", strconv.Itoa(c.CommitRecords), "must be at least 1")
	}
	// 15m is the broker's default transaction.max.timeout.ms.
	between("TransactionTimeout", c.TransactionTimeout, time.Second, 15*time.Minute)
	if c.TransactionTimeout <= c.CommitInterval {
		bad("TransactionTimeout", dur(c.TransactionTimeout), fmt.Sprintf("must be longer than CommitInterval (%s)", dur(c.CommitInterval)), "CommitInterval")
	}
	// The broker's default group.min.session.timeout.ms and group.max.session.timeout.ms.
	between("SessionTimeout", c.SessionTimeout, 6*time.Second, 30*time.Minute)
	if c.RebalanceTimeout < time.Second {
		bad("RebalanceTimeout", dur(c.RebalanceTimeout), "is under 1s")
	}
	between("ShutdownTimeout", c.ShutdownTimeout, 0, 10*time.Minute)
	if c.ReplicationFactor != -1 && c.ReplicationFactor < 1 {
		bad("ReplicationFactor", strconv.Itoa(int(c.ReplicationFactor)), "must be -1 (the broker's default) or a count from 1")
	}
	if c.MaxRecordBytes < 1<<10 || c.MaxRecordBytes > 64<<20 {
		bad("MaxRecordBytes", size(c.MaxRecordBytes), "is outside [1KiB, 64MiB]")
	}
	if c.DeadLetterMaxBytes < 1<<10 || c.DeadLetterMaxBytes > c.MaxRecordBytes {
		bad("DeadLetterMaxBytes", size(c.DeadLetterMaxBytes), fmt.Sprintf("is outside [1KiB, MaxRecordBytes = %s]", size(c.MaxRecordBytes)), "MaxRecordBytes")
	}
	if c.MemoryBudget < 64<<20 {
		bad("MemoryBudget", units.FormatBytes(c.MemoryBudget), "is under 64MiB")
	}
	if c.StateCacheBytes < 1<<20 {
		bad("StateCacheBytes", units.FormatBytes(c.StateCacheBytes), "is under 1MiB")
	}
	// The caches are the parts of the budget an operator sets directly; they must leave room in it
	// for the runtime's buffers and the Go runtime.
	if caches := c.StateCacheBytes + max(c.RecordCacheBytes, 0); c.MemoryBudget >= 64<<20 && caches > c.MemoryBudget/2 {
		bad("StateCacheBytes", units.FormatBytes(c.StateCacheBytes),
			fmt.Sprintf("plus the record cache (%s) is more than half of MemoryBudget (%s)", units.FormatBytes(max(c.RecordCacheBytes, 0)), units.FormatBytes(c.MemoryBudget)),
			"MemoryBudget")
	}
	if c.MaxOutOfOrderness < 0 {
		bad("MaxOutOfOrderness", dur(c.MaxOutOfOrderness), "is negative")
	}
	if c.StandbyReplicas < 0 || c.StandbyReplicas > maxStandbyReplicas {
		bad("StandbyReplicas", strconv.Itoa(c.StandbyReplicas), fmt.Sprintf("is outside [0, %d]", maxStandbyReplicas))
	}
	between("AuthRetryTimeout", c.AuthRetryTimeout, time.Second, 10*time.Minute)
	return errors.Join(errs...)
}

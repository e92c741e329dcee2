package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
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
	// transaction is abandoned to the broker's transaction timeout. Default 10s.
	ShutdownTimeout time.Duration
	// LeaveGroupOnShutdown makes a clean shutdown leave the consumer group, so that the instance's
	// partitions move at once. Static members (InstanceID) do not leave by default, so that a
	// restart takes its partitions back without a rebalance; set this when scaling down.
	LeaveGroupOnShutdown bool
	// CreateTopics creates missing output topics with the source topic's partition count.
	CreateTopics bool
	// ReplicationFactor for created topics; -1 (the default) takes the broker's default.
	ReplicationFactor int16
	// MaxRecordBytes is the largest record the runtime produces or fetches. Default 1MiB.
	MaxRecordBytes int
	// DeadLetterMaxBytes truncates larger dead-letter values (the streamd-original-bytes header keeps
	// the size; the source offset header points at the full record). Default 256KiB.
	DeadLetterMaxBytes int
	// StateDir is where tasks keep their Pebble state: <StateDir>/<pipeline>/<topic>-<partition>.
	// Required when an operator is stateful.
	StateDir string
	// StateCacheBytes is the Pebble block cache shared by every task. Default 16MiB.
	StateCacheBytes int64
	// RecordCacheBytes is the memory for caches of committed state values in front of Pebble, for
	// the whole instance: each task gets its share (by the source's partition count). Default 16MiB;
	// negative disables.
	RecordCacheBytes int64
	// MaxOutOfOrderness is how far behind the latest event time an event may be and still count as
	// on time: watermark = max event time seen - MaxOutOfOrderness. Default 5s.
	MaxOutOfOrderness time.Duration
	// IdleTimeout: a partition that has been caught up to its last stable offset and silent for
	// this long is idle, and its watermark follows the wall clock (minus MaxOutOfOrderness), so that
	// windows on a quiet key space still close. Default 30s; negative disables.
	IdleTimeout time.Duration
	// ClientOpts are extra franz-go options (TLS, SASL, dialer, ...), applied after streamd's own.
	ClientOpts []kgo.Opt
	// Logger receives the runtime's logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the runtime's metrics. Default: a private registry (metrics unexported).
	Registerer prometheus.Registerer
}

// EnsureDefaults fills in every unset field.
func (c *Config) EnsureDefaults() {
	if c.InstanceID == "" {
		c.InstanceID, _ = os.Hostname()
		if c.InstanceID == "" {
			c.InstanceID = "streamd"
		}
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.CommitRecords == 0 {
		c.CommitRecords = 20000
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = 15 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 15 * time.Second
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = 1 << 20
	}
	if c.DeadLetterMaxBytes == 0 {
		c.DeadLetterMaxBytes = 256 << 10
	}
	if c.StateCacheBytes == 0 {
		c.StateCacheBytes = 16 << 20
	}
	if c.RecordCacheBytes == 0 {
		c.RecordCacheBytes = 16 << 20
	}
	if c.MaxOutOfOrderness == 0 {
		c.MaxOutOfOrderness = 5 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
}

// Validate reports every out-of-bounds field at once. Call EnsureDefaults first.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("stream: "+format, args...)) }
	if len(c.Brokers) == 0 {
		bad("no brokers")
	}
	if !nameRE.MatchString(c.InstanceID) {
		bad("instance id %q: use 1 to 200 letters, digits, '.', '_' or '-'", c.InstanceID)
	}
	if c.CommitInterval < time.Millisecond || c.CommitInterval > time.Minute {
		bad("commit interval %s is outside [1ms, 1m]", c.CommitInterval)
	}
	if c.CommitRecords < 1 {
		bad("commit records %d must be at least 1", c.CommitRecords)
	}
	if c.TransactionTimeout < time.Second || c.TransactionTimeout > 15*time.Minute {
		bad("transaction timeout %s is outside [1s, 15m] (the broker's default transaction.max.timeout.ms)", c.TransactionTimeout)
	}
	if c.TransactionTimeout <= c.CommitInterval {
		bad("transaction timeout %s must be longer than the commit interval %s", c.TransactionTimeout, c.CommitInterval)
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 30*time.Minute {
		bad("session timeout %s is outside [6s, 30m] (the broker's default group session bounds)", c.SessionTimeout)
	}
	if c.RebalanceTimeout < time.Second {
		bad("rebalance timeout %s is under 1s", c.RebalanceTimeout)
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown timeout %s is negative", c.ShutdownTimeout)
	}
	if c.MaxRecordBytes < 1<<10 || c.MaxRecordBytes > 64<<20 {
		bad("max record bytes %d is outside [1KiB, 64MiB]", c.MaxRecordBytes)
	}
	if c.DeadLetterMaxBytes < 1<<10 || c.DeadLetterMaxBytes > c.MaxRecordBytes {
		bad("dead letter max bytes %d is outside [1KiB, max record bytes %d]", c.DeadLetterMaxBytes, c.MaxRecordBytes)
	}
	if c.MaxOutOfOrderness < 0 {
		bad("max out-of-orderness %s is negative", c.MaxOutOfOrderness)
	}
	return errors.Join(errs...)
}

package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/streamd/streamd/internal/units"
)

// Config is a pipeline config file. docs/config.md lists every key with its default and unit; keep the
// two in step (TestReferenceListsEveryKey checks it).
type Config struct {
	// App names the pipeline: consumer group, transactional id prefix, internal topic prefix.
	App string `yaml:"app"`
	// InstanceID is this instance's static group member id and transactional id suffix. Default: the
	// STREAMD_INSTANCE_ID environment variable, else the host name (a pod name in a StatefulSet).
	InstanceID string    `yaml:"instance_id"`
	Kafka      Kafka     `yaml:"kafka"`
	Memory     Memory    `yaml:"memory"`
	State      State     `yaml:"state"`
	Source     Source    `yaml:"source"`
	Tables     []Table   `yaml:"tables"`
	Windows    []Window  `yaml:"windows"`
	Features   []Feature `yaml:"features"`
	Labels     Labels    `yaml:"labels"`
	Models     Models    `yaml:"models"`
	Outputs    Outputs   `yaml:"outputs"`
	Admin      Admin     `yaml:"admin"`
	Log        Log       `yaml:"log"`
}

// Kafka is the connection and the exactly-once cycle.
type Kafka struct {
	Brokers            []string `yaml:"brokers"`
	CommitInterval     Duration `yaml:"commit_interval"`
	CommitRecords      int      `yaml:"commit_records"`
	TransactionTimeout Duration `yaml:"transaction_timeout"`
	SessionTimeout     Duration `yaml:"session_timeout"`
	ShutdownTimeout    Duration `yaml:"shutdown_timeout"`
	CreateTopics       *bool    `yaml:"create_topics"`
	LeaveGroupOnExit   bool     `yaml:"leave_group_on_shutdown"`
	ReplicationFactor  int      `yaml:"replication_factor"`
	TLS                *TLS     `yaml:"tls"`
	SASL               *SASL    `yaml:"sasl"`
	AuthRetryTimeout   Duration `yaml:"auth_retry_timeout"`
}

// Memory is the instance's memory budget (stream.Config.MemoryBudget), which the runtime splits
// between its buffers and caches, sets the Go memory limit from, and keeps to by pausing fetches.
type Memory struct {
	Budget ByteSize `yaml:"budget"`
}

// TLS enables TLS to the brokers. Every file is PEM.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASL authenticates to the brokers. A secret is never written in the file: PasswordEnv names the
// environment variable that holds the password, or PasswordFile the file (read at every
// authentication, so that a rotated password is used without a restart). OAUTHBEARER takes its
// token from OAuthBearer instead.
type SASL struct {
	Mechanism    string       `yaml:"mechanism"`
	Username     string       `yaml:"username"`
	PasswordEnv  string       `yaml:"password_env"`
	PasswordFile string       `yaml:"password_file"`
	OAuthBearer  *OAuthBearer `yaml:"oauthbearer"`
}

// OAuthBearer is where the OAUTHBEARER mechanism gets its token: a file that something else keeps
// fresh (TokenFile), or an OAuth 2 token endpoint with the client-credentials grant (TokenURL and
// the client's id and secret). See internal/kafkaauth.
type OAuthBearer struct {
	TokenFile        string            `yaml:"token_file"`
	TokenURL         string            `yaml:"token_url"`
	ClientID         string            `yaml:"client_id"`
	ClientSecretEnv  string            `yaml:"client_secret_env"`
	ClientSecretFile string            `yaml:"client_secret_file"`
	Scope            string            `yaml:"scope"`
	Extensions       map[string]string `yaml:"extensions"`
}

// Source is the input topic and the rules its records must meet.
type Source struct {
	Topic             string                `yaml:"topic"`
	Format            string                `yaml:"format"`
	Key               string                `yaml:"key"`
	EventID           string                `yaml:"event_id"`
	EventTime         EventTime             `yaml:"event_time"`
	MaxOutOfOrderness Duration              `yaml:"max_out_of_orderness"`
	IdleTimeout       DurationOrOff         `yaml:"idle_timeout"`
	MaxRecordBytes    ByteSize              `yaml:"max_record_bytes"`
	Fields            map[string]*FieldSpec `yaml:"fields"`
	// Rekey accepts a source.key field that differs from the Kafka record key (the key is
	// re-derived on purpose); otherwise such a record is a key_mismatch dead letter.
	Rekey bool `yaml:"rekey"`
	// Registry is the schema registry of the avro and protobuf formats (config/formats.go).
	Registry *Registry `yaml:"registry"`
	// Dedup drops events whose event id was already accepted (config/dedup.go).
	Dedup *Dedup `yaml:"dedup"`
}

// EventTime says where event time comes from and which times are believable.
type EventTime struct {
	Field     string   `yaml:"field"`
	Format    string   `yaml:"format"`
	MaxFuture Duration `yaml:"max_future"`
	NotBefore string   `yaml:"not_before"`
}

// FieldSpec declares a field the pipeline reads.
type FieldSpec struct {
	Type      string   `yaml:"type"`
	Required  bool     `yaml:"required"`
	Min       *float64 `yaml:"min"`
	Max       *float64 `yaml:"max"`
	MaxLength ByteSize `yaml:"max_length"`
	Values    []string `yaml:"values"`
	// AllowControlCharacters accepts C0 control characters other than tab, LF and CR in a string.
	AllowControlCharacters bool `yaml:"allow_control_characters"`
}

// Outputs are the topics the pipeline writes.
type Outputs struct {
	Clean              string   `yaml:"clean"`
	DeadLetters        string   `yaml:"dead_letters"`
	Late               string   `yaml:"late"`
	Predictions        string   `yaml:"predictions"`
	DeadLetterMaxBytes ByteSize `yaml:"dead_letter_max_bytes"`
	// Format is the encoding of predictions and window results (config/outputs.go).
	Format string `yaml:"format"`
	// Training is the topic of training rows: one per labelled event (model/training.go).
	Training string `yaml:"training"`
	// TopicDefaults are the record timestamps and creation settings of every output topic;
	// Topics override them per topic (config/outputs.go).
	TopicDefaults TopicConfig             `yaml:"topic_defaults"`
	Topics        map[string]*TopicConfig `yaml:"topics"`
}

// TopicConfig is how streamd timestamps an output topic's records and creates the topic
// (stream.TopicSettings). An unset key takes outputs.topic_defaults', then the broker's default.
type TopicConfig struct {
	// Timestamp is processing (the default: the time the record is produced) or event.
	Timestamp         string            `yaml:"timestamp"`
	Retention         Retention         `yaml:"retention"`
	CleanupPolicy     string            `yaml:"cleanup_policy"`
	ReplicationFactor int               `yaml:"replication_factor"`
	Configs           map[string]string `yaml:"configs"`
}

// Log configures the structured logs.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Defaults of the keys the stream API does not have. The runtime keys' defaults are stream.Config's
// (stream.DefaultCommitInterval, ...), which EnsureDefaults takes from it. docs/config.md repeats
// both.
const (
	DefaultMaxFuture   = time.Hour
	DefaultNotBefore   = "2000-01-01T00:00:00Z"
	DefaultAdminListen = "127.0.0.1:8080"
	DefaultStateDir    = "streamd-state"
)

// EnsureDefaults fills every key the file left unset.
func (c *Config) EnsureDefaults() {
	if c.InstanceID == "" {
		c.InstanceID = os.Getenv("STREAMD_INSTANCE_ID")
	}
	if c.InstanceID == "" {
		c.InstanceID, _ = os.Hostname()
	}
	k := &c.Kafka
	if k.CreateTopics == nil {
		yes := true
		k.CreateTopics = &yes
	}
	if c.State.Dir == "" {
		c.State.Dir = DefaultStateDir
	}
	c.runtimeDefaults()
	s := &c.Source
	if s.Format == "" {
		s.Format = "json"
	}
	if s.EventTime.Format == "" {
		s.EventTime.Format = "rfc3339"
	}
	if s.EventTime.MaxFuture == 0 {
		s.EventTime.MaxFuture = Duration(DefaultMaxFuture)
	}
	if s.EventTime.NotBefore == "" {
		s.EventTime.NotBefore = DefaultNotBefore
	}
	c.Admin.ensureDefaults()
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// runtimeDefaults fills the runtime keys the file left unset with stream.Config's defaults: the
// file compiles into a stream.Config, EnsureDefaults fills it, and the unset keys take its values.
func (c *Config) runtimeDefaults() {
	d := c.streamConfig()
	d.EnsureDefaults()
	k, s := &c.Kafka, &c.Source
	setDuration(&k.CommitInterval, d.CommitInterval)
	if k.CommitRecords == 0 {
		k.CommitRecords = d.CommitRecords
	}
	setDuration(&k.TransactionTimeout, d.TransactionTimeout)
	setDuration(&k.SessionTimeout, d.SessionTimeout)
	setDuration(&k.ShutdownTimeout, d.ShutdownTimeout)
	setDuration(&k.AuthRetryTimeout, d.AuthRetryTimeout)
	if k.ReplicationFactor == 0 {
		k.ReplicationFactor = int(d.ReplicationFactor)
	}
	if c.Memory.Budget == 0 {
		c.Memory.Budget = ByteSize(d.MemoryBudget)
	}
	if c.State.CacheSize == 0 {
		c.State.CacheSize = ByteSize(d.StateCacheBytes)
	}
	setDuration(&s.MaxOutOfOrderness, d.MaxOutOfOrderness)
	if s.IdleTimeout == 0 {
		s.IdleTimeout = DurationOrOff(d.IdleTimeout)
	}
	if s.MaxRecordBytes == 0 {
		s.MaxRecordBytes = ByteSize(d.MaxRecordBytes)
	}
	if c.Outputs.DeadLetterMaxBytes == 0 {
		c.Outputs.DeadLetterMaxBytes = ByteSize(d.DeadLetterMaxBytes)
	}
}

func setDuration(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// Duration is a time span written like Go's durations, plus days: 100ms, 15s, 1h30m, 7d.
type Duration time.Duration

func (d *Duration) parseScalar(s string) error {
	v, err := units.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return units.FormatDuration(time.Duration(d)) }

// Retention is a topic's retention.ms: a duration, or forever (stored as -1: no time limit).
type Retention time.Duration

func (r *Retention) parseScalar(s string) error {
	if s == "forever" {
		*r = -1
		return nil
	}
	v, err := units.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%v, or forever", err)
	}
	if v <= 0 {
		return fmt.Errorf("%s: a retention is positive (or forever)", s)
	}
	*r = Retention(v)
	return nil
}

// DurationOrOff is a Duration that may also be written "off" (stored as -1).
type DurationOrOff time.Duration

func (d *DurationOrOff) parseScalar(s string) error {
	if s == "off" {
		*d = -1
		return nil
	}
	v, err := units.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%v, or off", err)
	}
	*d = DurationOrOff(v)
	return nil
}

// D returns the duration; -1 means off.
func (d DurationOrOff) D() time.Duration { return time.Duration(d) }

func (d DurationOrOff) String() string {
	if d < 0 {
		return "off"
	}
	return units.FormatDuration(time.Duration(d))
}

// ByteSize is a size in bytes written like 1048576, 512KiB, 1MiB or 1GB.
type ByteSize int64

func (b *ByteSize) parseScalar(s string) error {
	v, err := units.ParseBytes(s)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

func (b ByteSize) String() string { return units.FormatBytes(int64(b)) }

// Load reads, decodes, defaults and validates a config file. The error names every bad key.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data)
}

// Parse is Load for a config already in memory.
func Parse(data []byte) (*Config, error) {
	return parseWithEnv(data, os.LookupEnv)
}

// ParseWithEnv is Parse with ${VAR} references resolved by env instead of the process
// environment: the demo names its own broker and state directory this way without changing
// the environment of the process it runs in (tests run it beside others).
func ParseWithEnv(data []byte, env func(string) (string, bool)) (*Config, error) {
	return parseWithEnv(data, env)
}

func parseWithEnv(data []byte, env func(string) (string, bool)) (*Config, error) {
	var c Config
	decodeErr := parseYAML(data, &c, env)
	var notYAML *yamlError
	if errors.As(decodeErr, &notYAML) {
		return nil, &Error{decodeErr}
	}
	// Validate even after decode errors, so that one run names every bad key. A key that failed to
	// decode keeps its default, which validates.
	c.EnsureDefaults()
	if err := errors.Join(decodeErr, c.validate(env)); err != nil {
		return nil, &Error{err}
	}
	return &c, nil
}

// Error is returned by Load and Parse; it joins one KeyError per bad key.
type Error struct{ err error }

func (e *Error) Error() string {
	problems := e.Problems()
	if len(problems) > 1 {
		var b strings.Builder
		fmt.Fprintf(&b, "config: %d problems:", len(problems))
		for _, err := range problems {
			b.WriteString("\n  ")
			b.WriteString(err.Error())
		}
		return b.String()
	}
	return "config: " + e.err.Error()
}

// Problems returns each problem on its own: the joined errors flattened, however deeply the
// checks joined them.
func (e *Error) Problems() []error {
	var out []error
	var walk func(error)
	walk = func(err error) {
		if list, ok := err.(interface{ Unwrap() []error }); ok {
			for _, x := range list.Unwrap() {
				walk(x)
			}
			return
		}
		if err != nil {
			out = append(out, err)
		}
	}
	walk(e.err)
	return out
}
func (e *Error) Unwrap() error { return e.err }

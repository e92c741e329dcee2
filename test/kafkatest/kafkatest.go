// Package kafkatest gives a test a Kafka broker: the real one named by KAFKA_BROKERS when it is set
// (what CI does, with an Apache Kafka broker started by .ci/run); else franz-go's in-process kfake
// cluster, which needs nothing and supports transactions, but is not the proof of exactly-once: a
// test that depends on a real broker's behaviour calls RequireReal and skips with its reason under
// kfake.
//
// With Docker but no Kafka installed, start a Kafka container with the command in the nested module
// test/kafkatest/container and set the KAFKA_BROKERS line it prints:
//
//	cd test/kafkatest/container && go run .    # prints KAFKA_BROKERS=127.0.0.1:port; Ctrl-C removes it
//
// It is a module of its own so that testcontainers-go and its dependencies (Docker's client,
// OpenTelemetry, gRPC) stay out of streamd's module graph; scripts/kafka.sh (make kafka-up) runs a
// broker without Docker.
//
// Tests share one real broker, so every test works on topics and groups of its own (Topic and
// Group make unique names).
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/kafkaread"
)

// Kind says what kind of broker a test got.
type Kind string

const (
	Real Kind = "kafka" // KAFKA_BROKERS: a real broker, or a container (see the package doc)
	Fake Kind = "kfake" // in-process
)

// Broker is a Kafka cluster for a test.
type Broker struct {
	Addrs []string
	Kind  Kind
	// ClientOpts are what a client needs to connect besides Addrs (TLS, SASL); Client and the
	// helpers built on it apply them.
	ClientOpts []kgo.Opt
}

// Start returns the broker for t; see the package doc for which one. A kfake cluster is per test and
// closed at its end; a real one is shared.
func Start(t testing.TB) *Broker {
	t.Helper()
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		return &Broker{Addrs: strings.Split(env, ","), Kind: Real}
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatalf("kafkatest: start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &Broker{Addrs: c.ListenAddrs(), Kind: Fake}
}

// StartFake returns an in-process kfake cluster of one broker with the given options (SASL users,
// TLS), whatever KAFKA_BROKERS says: for tests of what kfake can play, such as authentication,
// which the shared real broker does not. clientOpts are what the test's own clients need to
// connect (Broker.ClientOpts). The cluster is closed at the end of the test.
func StartFake(t testing.TB, clientOpts []kgo.Opt, opts ...kfake.Opt) *Broker {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(4)}, opts...)...)
	if err != nil {
		t.Fatalf("kafkatest: start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &Broker{Addrs: c.ListenAddrs(), Kind: Fake, ClientOpts: clientOpts}
}

// RequireReal skips the test unless the broker is a real Kafka (KAFKA_BROKERS).
func (b *Broker) RequireReal(t testing.TB, why string) {
	t.Helper()
	if b.Kind == Fake {
		t.Skipf("needs a real Kafka broker (%s); set KAFKA_BROKERS, e.g. with `make kafka-up`", why)
	}
}

// Client returns a plain client for the broker, closed at the end of the test.
func (b *Broker) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(b.Addrs...)}, b.ClientOpts...), opts...)...)
	if err != nil {
		t.Fatalf("kafkatest: client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Name returns a name unique to this test run, prefixed with the test's name: for topics, groups
// and transactional ids on a shared broker.
func Name(t testing.TB, what string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(n) > 80 {
		n = n[len(n)-80:]
	}
	return fmt.Sprintf("%s-%s-%s", n, what, hex.EncodeToString(b[:]))
}

// Topic creates a topic with a unique name and returns the name. The topic is deleted at the end of
// the test on a shared broker.
func (b *Broker) Topic(t testing.TB, what string, partitions int32) string {
	t.Helper()
	name := Name(t, what)
	adm := kadm.NewClient(b.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("kafkatest: create topic %s: %v", name, err)
	}
	if b.Kind != Fake {
		t.Cleanup(func() {
			cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addrs...)}, b.ClientOpts...)...)
			if err != nil {
				return
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = kadm.NewClient(cl).DeleteTopics(ctx, name)
		})
	}
	return name
}

// ReadCommitted returns every committed record of topic, reading until it has seen each partition's
// end offset as of the call (so the records produced before the call are all there), or until
// timeout.
func (b *Broker) ReadCommitted(t testing.TB, topic string, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := kafkaread.Committed(ctx, append([]kgo.Opt{kgo.SeedBrokers(b.Addrs...)}, b.ClientOpts...), topic)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return out
}

// Header returns the value of the named header, or "".
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// WaitCaughtUp waits until group has committed, for every partition of topic, the end offset the
// partition has at the time of the call: everything produced before the call is processed. It fails
// the test after timeout, or at once when stop reports an error (a runtime that died).
func (b *Broker) WaitCaughtUp(t testing.TB, group, topic string, timeout time.Duration, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	adm := kadm.NewClient(b.Client(t))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("kafkatest: end offsets of %s: %v", topic, err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var behind map[int32][2]int64
	for {
		committed, err := adm.FetchOffsetsForTopics(ctx, group, topic)
		if err == nil {
			behind = map[int32][2]int64{}
			ends.Each(func(o kadm.ListedOffset) {
				c, _ := committed.Lookup(topic, o.Partition)
				if max(c.At, 0) < o.Offset { // an empty partition is caught up with nothing committed (-1)
					behind[o.Partition] = [2]int64{c.At, o.Offset}
				}
			})
			if len(behind) == 0 {
				return
			}
		}
		if stop != nil {
			if err := stop(); err != nil {
				t.Fatalf("kafkatest: stopped while waiting for group %s: %v", group, err)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kafkatest: group %s did not catch up on %s within %s; behind (committed, end): %v (last error %v)", group, topic, timeout, behind, err)
		case <-tick.C:
		}
	}
}

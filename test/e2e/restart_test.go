package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
)

// TestRestartDoesNotWaitForTheTransactionTimeout starts an instance whose dead predecessor (same
// instance id, so the same transactional id) left a transaction open with changelog records in it,
// as a SIGKILL between a cycle's changelog flush and its commit does. That transaction holds the
// changelog's last stable offset, so the restore, a read_committed read to the end, cannot finish
// until someone ends it. The restarted instance must end it at once by fencing its predecessor, not
// wait for the broker to time it out. The dead transaction's timeout is 60 s; the test wants the
// instance to commit progress within half of that, which a healthy start does in seconds.
func TestRestartDoesNotWaitForTheTransactionTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("long: starts a daemon behind a dead transaction")
	}
	w := newWindowSetup(t, 4)
	w.b.RequireReal(t, "the broker's last-stable-offset and transaction-timeout behaviour")
	const txnTimeout, bound = 60 * time.Second, 30 * time.Second
	const instance = "restart-1"
	cfgPath := w.config(t, instance, t.TempDir(), freePort(t))
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "transaction_timeout: 10s") {
		t.Fatal("the window config no longer sets transaction_timeout: 10s; update this test")
	}
	cfg = []byte(strings.Replace(string(cfg), "transaction_timeout: 10s", "transaction_timeout: "+txnTimeout.String(), 1))
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	adm := kadm.NewClient(w.b.Client(t))
	changelog := state.ChangelogTopic(w.app, "activity")
	if _, err := adm.CreateTopic(ctx, 4, -1, state.ChangelogConfigs(), changelog); err != nil {
		t.Fatalf("creating %s: %v", changelog, err)
	}
	// The dead predecessor: its transaction is left open, never ended, with a record in the
	// changelog partition 0 that the restore must read past.
	txnID := w.app + "-" + instance
	dead := w.b.Client(t, kgo.TransactionalID(txnID), kgo.TransactionTimeout(txnTimeout), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := dead.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := dead.ProduceSync(ctx, &kgo.Record{Topic: changelog, Partition: 0, Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("producing the dead transaction's changelog record: %v", err)
	}
	if s := txnState(ctx, adm, txnID); s != "Ongoing" {
		t.Fatalf("the dead transaction is %s, want Ongoing", s)
	}

	if err := produceInput(ctx, t, w.b.Client(t), w.src, 4000, 0, 0, 5); err != nil {
		t.Fatal(err)
	}
	committed := func() int64 {
		offsets, err := adm.FetchOffsetsForTopics(ctx, w.app, w.src)
		if err != nil {
			return -1
		}
		var sum int64
		offsets.Each(func(o kadm.OffsetResponse) { sum += max(o.At, 0) })
		return sum
	}
	started := time.Now()
	proc := start(t, w.logPath, nil, streamdBin, "run", "-config", cfgPath)
	for committed() <= 0 {
		if err := proc.exited(); err != nil {
			t.Fatalf("streamd exited: %v", err)
		}
		if time.Since(started) > bound {
			proc.kill(t)
			t.Fatalf("streamd committed nothing within %s of its start: it waited for its dead predecessor's transaction (timeout %s, now %s)",
				bound, txnTimeout, txnState(ctx, adm, txnID))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("first commit %s after the start (the dead transaction's timeout: %s)", time.Since(started).Round(10*time.Millisecond), txnTimeout)
	w.b.WaitCaughtUp(t, w.app, w.src, 2*time.Minute, proc.exited)
	proc.stop(t)
}

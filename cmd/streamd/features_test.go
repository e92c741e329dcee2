package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/config"
	"github.com/streamd/streamd/configs"
)

// featureDaemon runs the example pipeline on a kfake cluster and returns its admin base URL and a
// client of the cluster.
func featureDaemon(t testing.TB) (string, *kgo.Client) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	t.Setenv("KAFKA_BROKERS", cluster.ListenAddrs()[0])
	t.Setenv("STREAMD_STATE_DIR", t.TempDir())
	t.Setenv("STREAMD_INSTANCE_ID", "features-test")
	t.Setenv("STREAMD_ADMIN_LISTEN", "127.0.0.1:0")
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("transactions"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 4, 1, nil, "transactions", "labels"); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(configs.FraudPipeline)
	if err != nil {
		t.Fatal(err)
	}
	dctx, stop := context.WithCancel(context.Background())
	d, err := startDaemon(dctx, cfg, slog.New(slog.DiscardHandler), cfg.Admin.Listen)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		_ = d.wait()
	})
	_, port, _ := net.SplitHostPort(d.adm.Addr())
	base := "http://127.0.0.1:" + port
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, cl
			}
		}
		if ctx.Err() != nil {
			t.Fatal("the daemon did not become ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// predictionsOf reads the committed predictions until it has n for key, and returns them in order.
func predictionsOf(t testing.TB, cl *kgo.Client, key string, n int) []map[string]any {
	t.Helper()
	rd, err := kgo.NewClient(kgo.SeedBrokers(cl.OptValue(kgo.SeedBrokers).([]string)...), kgo.ConsumeTopics("fraud-scores"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []map[string]any
	for len(out) < n {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d predictions for %s, want %d", len(out), key, n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != key {
				return
			}
			var p map[string]any
			if err := json.Unmarshal(r.Value, &p); err != nil {
				t.Fatalf("prediction %s: %v", r.Value, err)
			}
			out = append(out, p)
		})
	}
	return out
}

// lookup asks /v1/features/{key}, with event as a POST body when not nil.
func lookup(t *testing.T, base, key string, event []byte) (int, map[string]any) {
	t.Helper()
	var resp *http.Response
	var err error
	if event != nil {
		resp, err = http.Post(base+"/v1/features/"+key, "application/json", bytes.NewReader(event))
	} else {
		resp, err = http.Get(base + "/v1/features/" + key)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("/v1/features/%s: %d %s", key, resp.StatusCode, body)
	}
	return resp.StatusCode, v
}

func tx(id, key string, at time.Time, amount float64, merchant string) []byte {
	return []byte(fmt.Sprintf(`{"event_id":%q,"card_id":%q,"event_time":%q,"amount":%g,"merchant":%q,"country":"FR","channel":"pos","mcc":5411}`,
		id, key, at.UTC().Format(time.RFC3339Nano), amount, merchant))
}

// TestFeatureLookupEqualsTheNextPrediction: after a few events of a key, /v1/features/{key} with the
// key's next event answers exactly the feature values that event's prediction then shows (what
// the model receives, after the transforms); without the event, the window aggregates as they are,
// over the key's past events only (the next event adds itself).
func TestFeatureLookupEqualsTheNextPrediction(t *testing.T) {
	base, cl := featureDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const key = "card-42"
	if code, v := lookup(t, base, key, nil); code != http.StatusNotFound {
		t.Fatalf("before any event: %d %v, want 404", code, v)
	}
	now := time.Now().Add(-time.Minute)
	amounts := []float64{12.5, 80, 3.25, 41}
	for i, a := range amounts {
		r := &kgo.Record{Key: []byte(key), Value: tx(fmt.Sprintf("e%d", i), key, now.Add(time.Duration(i)*time.Second), a, fmt.Sprintf("m%d", i%3))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	predictionsOf(t, cl, key, len(amounts))

	code, past := lookup(t, base, key, nil)
	if code != http.StatusOK || past["found"] != true || past["with_event"] != false {
		t.Fatalf("after %d events: %d %v", len(amounts), code, past)
	}
	pf := past["features"].(map[string]any)
	if pf["tx_count_10m"] != float64(len(amounts)) || pf["amount_sum_10m"] != 136.75 || pf["merchants_1h"] != 3.0 || pf["amount_log"] != nil {
		t.Errorf("past features %v: want 4 events, 136.75 spent, 3 merchants, no amount", pf)
	}

	next := tx("e-next", key, now.Add(10*time.Second), 99.5, "m9")
	code, ahead := lookup(t, base, key, next)
	if code != http.StatusOK || ahead["with_event"] != true {
		t.Fatalf("with the next event: %d %v", code, ahead)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: next}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	preds := predictionsOf(t, cl, key, len(amounts)+1)
	got := preds[len(preds)-1]
	if got["event_id"] != "e-next" {
		t.Fatalf("last prediction %v", got)
	}
	if !reflect.DeepEqual(ahead["features"], got["features"]) {
		t.Errorf("looked up with the event %v\nits prediction        %v", ahead["features"], got["features"])
	}
	// The prediction shows what the model received: log1p, then standardize by a scaler that has
	// learned no label yet (0, the mean, in standard units); the window aggregates as they are
	// (the past features plus the event) are what a look-up without an event shows now.
	gf := got["features"].(map[string]any)
	for _, name := range []string{"amount_log", "tx_count_10m", "amount_sum_10m", "tx_count_1h", "merchants_1h"} {
		if gf[name] != 0.0 {
			t.Errorf("prediction %v: %s is not standardized by an empty scaler", gf, name)
		}
	}
	if code, now := lookup(t, base, key, nil); code != http.StatusOK {
		t.Errorf("after the next event: %d %v", code, now)
	} else if nf := now["features"].(map[string]any); nf["tx_count_10m"] != pf["tx_count_10m"].(float64)+1 || nf["amount_sum_10m"] != pf["amount_sum_10m"].(float64)+99.5 {
		t.Errorf("features %v after the next event are not the past features %v plus the event", nf, pf)
	}

	// An event the pipeline would reject, and one of another key.
	if code, v := lookup(t, base, key, []byte(`{"card_id":"card-42"}`)); code != http.StatusUnprocessableEntity || v["reason"] == nil {
		t.Errorf("a rejected event: %d %v, want 422 with its reason", code, v)
	}
	if code, v := lookup(t, base, key, tx("x", "card-7", now, 1, "m")); code != http.StatusBadRequest {
		t.Errorf("another key's event: %d %v, want 400", code, v)
	}
}

// BenchmarkFeatureLookup: one /v1/features/{key} look-up after another (HTTP on loopback, the
// key's two sliding windows read on its task) on the example pipeline holding 200 keys, idle. It
// is the cost of a look-up without contention; docs/BENCHMARKS.md has the latency at 1,000/s
// beside a pipeline at full speed (test/bench/lookups).
func BenchmarkFeatureLookup(b *testing.B) {
	base, cl := featureDaemon(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now().Add(-time.Minute)
	var recs []*kgo.Record
	for i := range 2000 {
		key := fmt.Sprintf("card-%06d", i%200)
		recs = append(recs, &kgo.Record{Key: []byte(key), Value: tx(fmt.Sprintf("e%d", i), key, now.Add(time.Duration(i)*time.Millisecond), float64(i%90), fmt.Sprintf("m%d", i%7))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{}
	for k := 0; k < 200; { // until every key's events are in
		resp, err := client.Get(fmt.Sprintf("%s/v1/features/card-%06d", base, k))
		if err != nil {
			b.Fatal(err)
		}
		var kf struct {
			Features map[string]any `json:"features"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&kf)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && kf.Features["tx_count_10m"] == 10.0 {
			k++
		} else if ctx.Err() != nil {
			b.Fatalf("card-%06d: %d %v", k, resp.StatusCode, kf.Features)
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		resp, err := client.Get(fmt.Sprintf("%s/v1/features/card-%06d", base, i%200))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
		i++
	}
}

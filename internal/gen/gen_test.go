package gen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clockAt is the event-time clock the tests use: one millisecond per record.
func clockAt(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) }

func mustNew(t testing.TB, cfg Config) *Generator {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestDeterminism(t *testing.T) {
	cfg := Config{Seed: 42, BadRatio: 0.2, DriftAt: 3000, LabelRatio: 0.5, LabelDelay: time.Second}
	a, b := mustNew(t, cfg), mustNew(t, cfg)
	cfg.Seed = 43
	c := mustNew(t, cfg)
	var la, lb []Label
	differ := 0
	for i := range 6000 {
		now := clockAt(i / 3) // several records per clock value, like a batch
		ra, rb, rc := a.Next(now), b.Next(now), c.Next(now)
		if !bytes.Equal(ra.Key, rb.Key) || !bytes.Equal(ra.Value, rb.Value) || ra.Tx != rb.Tx || ra.Bad != rb.Bad {
			t.Fatalf("record %d differs between equal generators:\n%s\n%s", i, ra.Value, rb.Value)
		}
		if !bytes.Equal(ra.Value, rc.Value) {
			differ++
		}
		if i%50 == 0 {
			la, lb = a.DueLabels(la, now), b.DueLabels(lb, now)
		}
	}
	if len(la) == 0 || fmt.Sprint(la) != fmt.Sprint(lb) {
		t.Fatalf("labels differ or are missing: %d vs %d", len(la), len(lb))
	}
	if differ < 5990 {
		t.Errorf("a different seed gave %d different records of 6000", differ)
	}
}

// The transactions do not depend on BadRatio or LabelRatio: they have their own random streams.
func TestStreamsIndependent(t *testing.T) {
	a := mustNew(t, Config{Seed: 5})
	b := mustNew(t, Config{Seed: 5, BadRatio: 0.3, LabelRatio: 0.2})
	for i := range 3000 {
		ra, rb := a.Next(clockAt(i)), b.Next(clockAt(i))
		if rb.Bad == NotAnObject {
			continue
		}
		if ra.Tx != rb.Tx {
			t.Fatalf("record %d: %+v != %+v", i, ra.Tx, rb.Tx)
		}
	}
}

func TestAppendNextMatchesNext(t *testing.T) {
	a, b := mustNew(t, Config{Seed: 9, BadRatio: 0.3}), mustNew(t, Config{Seed: 9, BadRatio: 0.3})
	var buf []byte
	for i := range 2000 {
		ra := a.Next(clockAt(i))
		rb, out := b.AppendNext(append(buf[:0], "prefix"...), clockAt(i))
		if !bytes.Equal(ra.Key, rb.Key) || !bytes.Equal(ra.Value, rb.Value) || ra.Tx != rb.Tx || ra.Bad != rb.Bad {
			t.Fatalf("record %d: Next and AppendNext differ", i)
		}
		if (ra.Key == nil) != (rb.Key == nil) || cap(ra.Key) != len(ra.Key) || cap(rb.Key) != len(rb.Key) {
			t.Fatalf("record %d: key nil-ness or capacity wrong", i)
		}
		if string(out) != "prefix"+string(rb.Key)+string(rb.Value) {
			t.Fatalf("record %d: returned buffer %q", i, out)
		}
		buf = out
	}
}

var (
	eventIDRe  = regexp.MustCompile(`^[0-9a-f]{16}$`)
	cardIDRe   = regexp.MustCompile(`^card-\d{6}$`)
	merchantRe = regexp.MustCompile(`^m-\d{4}$`)
	timeRe     = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	amountRe   = regexp.MustCompile(`"amount":\d+\.\d\d,`)
)

func TestValidRecords(t *testing.T) {
	g := mustNew(t, Config{Seed: 3, DriftAt: 10000})
	knownMCC := map[int]bool{}
	for _, m := range mccs {
		knownMCC[m.code] = true
	}
	knownCountry := map[string]bool{}
	for _, c := range countries {
		knownCountry[c.code] = true
	}
	ids := map[string]bool{}
	channels := map[string]int{}
	for i := range 20000 {
		now := clockAt(i)
		rec := g.Next(now)
		if rec.Bad != NotBad {
			t.Fatalf("bad record with BadRatio 0: %v", rec.Bad)
		}
		if !json.Valid(rec.Value) || !utf8.Valid(rec.Value) {
			t.Fatalf("invalid JSON: %s", rec.Value)
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Value, &m); err != nil {
			t.Fatal(err)
		}
		if len(m) != 8 {
			t.Fatalf("want 8 fields, got %d: %s", len(m), rec.Value)
		}
		tx := rec.Tx
		str := func(k string) string {
			s, ok := m[k].(string)
			if !ok {
				t.Fatalf("%s is not a string: %s", k, rec.Value)
			}
			return s
		}
		if id := str("event_id"); id != tx.EventID || !eventIDRe.MatchString(id) || ids[id] {
			t.Fatalf("event_id %q bad or repeated", id)
		}
		ids[tx.EventID] = true
		if c := str("card_id"); c != tx.CardID || !cardIDRe.MatchString(c) || string(rec.Key) != c {
			t.Fatalf("card_id %q, key %q, tx %q", c, rec.Key, tx.CardID)
		}
		ts := str("event_time")
		et, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || !timeRe.MatchString(ts) || !et.Equal(tx.Time) || tx.Time.Location() != time.UTC {
			t.Fatalf("event_time %q vs %v: %v", ts, tx.Time, err)
		}
		if et.After(now) || now.Sub(et) >= DefaultOutOfOrder {
			t.Fatalf("event time %v not within %v before %v", et, DefaultOutOfOrder, now)
		}
		amount, ok := m["amount"].(float64)
		if !ok || amount != tx.Amount || amount <= 0 || amount > 20000 || !amountRe.Match(rec.Value) ||
			math.Round(amount*100)/100 != amount {
			t.Fatalf("amount %v vs %v: %s", m["amount"], tx.Amount, rec.Value)
		}
		if s := str("merchant"); s != tx.Merchant || !merchantRe.MatchString(s) {
			t.Fatalf("merchant %q", s)
		}
		if s := str("country"); s != tx.Country || !knownCountry[s] {
			t.Fatalf("country %q", s)
		}
		ch := str("channel")
		if ch != tx.Channel || (ch != "pos" && ch != "online" && ch != "atm") {
			t.Fatalf("channel %q", ch)
		}
		channels[ch]++
		mcc, ok := m["mcc"].(float64)
		if !ok || int(mcc) != tx.MCC || !knownMCC[tx.MCC] || (ch == "atm") != (tx.MCC == 6011) {
			t.Fatalf("mcc %v with channel %s", m["mcc"], ch)
		}
	}
	for _, ch := range []string{"pos", "online", "atm"} {
		if channels[ch] < 500 {
			t.Errorf("channel %s only %d times", ch, channels[ch])
		}
	}
}

func TestHotCardsAndMerchants(t *testing.T) {
	g := mustNew(t, Config{Seed: 4})
	cards, merchants := map[string]int{}, map[string]int{}
	const n = 50000
	for i := range n {
		tx := g.Next(clockAt(i)).Tx
		cards[tx.CardID]++
		merchants[tx.Merchant]++
	}
	top := 0
	for _, c := range cards {
		top = max(top, c)
	}
	t.Logf("%d distinct cards, hottest %d of %d; %d distinct merchants", len(cards), top, n, len(merchants))
	if top < n/20 {
		t.Errorf("hottest card has %d of %d records: not skewed", top, n)
	}
	if len(cards) < 2000 || len(merchants) < 1000 {
		t.Errorf("too few distinct cards (%d) or merchants (%d)", len(cards), len(merchants))
	}
}

func TestBadKinds(t *testing.T) {
	cfg := Config{Seed: 8, BadRatio: 0.5, HugeBytes: 4096}
	g := mustNew(t, cfg)
	const n = 8000
	seen := map[BadKind]int{}
	bad := 0
	for i := range n {
		rec := g.Next(clockAt(i))
		seen[rec.Bad]++
		if rec.Bad == NotBad {
			continue
		}
		bad++
		checkBad(t, rec, cfg.HugeBytes)
	}
	for _, k := range BadKinds() {
		if seen[k] < 50 {
			t.Errorf("%v seen %d times in %d records", k, seen[k], n)
		}
	}
	if r := float64(bad) / n; math.Abs(r-0.5) > 0.03 {
		t.Errorf("bad ratio %.3f, want 0.5", r)
	}

	// A subset of kinds.
	g = mustNew(t, Config{Seed: 8, BadRatio: 1, BadKinds: []BadKind{AncientTime, Huge}})
	for i := range 500 {
		rec := g.Next(clockAt(i))
		if rec.Bad != AncientTime && rec.Bad != Huge {
			t.Fatalf("kind %v not in the configured subset", rec.Bad)
		}
		checkBad(t, rec, DefaultHugeBytes)
	}
}

func checkBad(t *testing.T, rec Record, hugeBytes int) {
	t.Helper()
	v := rec.Value
	fail := func(why string) { t.Fatalf("%v: %s: %.300s", rec.Bad, why, v) }
	var m map[string]any
	object := func() {
		if err := json.Unmarshal(v, &m); err != nil {
			fail("not a JSON object: " + err.Error())
		}
	}
	eventYear := func() int {
		s, _ := m["event_time"].(string)
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			fail("event_time does not parse")
		}
		return tm.Year()
	}
	if rec.Bad == MissingKey {
		if rec.Key != nil {
			fail("has a key")
		}
	} else if rec.Bad != NotAnObject && string(rec.Key) != rec.Tx.CardID {
		fail("key is not the card id")
	}
	switch rec.Bad {
	case MalformedJSON:
		if json.Valid(v) {
			fail("valid JSON")
		}
	case NotAnObject:
		if !json.Valid(v) || (v[0] != '[' && v[0] != '"') {
			fail("not a JSON array or string")
		}
		if rec.Tx != (Transaction{}) {
			fail("Tx not zero")
		}
	case MissingKey:
		object()
		if _, ok := m["card_id"]; ok {
			fail("has card_id")
		}
	case MissingAmount:
		object()
		if _, ok := m["amount"]; ok || m["card_id"] == nil {
			fail("has amount or lacks card_id")
		}
	case AmountNotNumber:
		object()
		if m["amount"] != "abc" {
			fail("amount is not \"abc\"")
		}
	case NegativeAmount:
		object()
		if a, ok := m["amount"].(float64); !ok || a >= 0 {
			fail("amount not negative")
		}
	case NaNAmount:
		if json.Valid(v) || !bytes.Contains(v, []byte(`"amount":NaN,`)) {
			fail("no bare NaN")
		}
	case AncientTime:
		object()
		if eventYear() != 1970 {
			fail("not 1970")
		}
	case FutureTime:
		object()
		if eventYear() != 2100 {
			fail("not 2100")
		}
	case BadTimeFormat:
		object()
		if m["event_time"] != "yesterday" {
			fail("event_time is not yesterday")
		}
	case Huge:
		object()
		if len(v) < hugeBytes || len(v) > hugeBytes+16 {
			fail(fmt.Sprintf("%d bytes, want %d", len(v), hugeBytes))
		}
		if n, _ := m["note"].(string); len(n) < hugeBytes/2 || m["card_id"] != rec.Tx.CardID {
			fail("no long note or no card")
		}
	case InvalidUTF8:
		if utf8.Valid(v) {
			fail("valid UTF-8")
		}
		// Only the string is broken: with the bad bytes replaced it is a complete transaction.
		fixed := bytes.ToValidUTF8(v, []byte("?"))
		if err := json.Unmarshal(fixed, &m); err != nil || len(m) != 8 {
			fail("not otherwise a valid transaction")
		}
	default:
		fail("unexpected kind")
	}
}

func TestBadKindString(t *testing.T) {
	names := map[string]bool{NotBad.String(): true}
	for _, k := range BadKinds() {
		s := k.String()
		if s == "" || names[s] || strings.HasPrefix(s, "BadKind(") {
			t.Errorf("kind %d has name %q", k, s)
		}
		names[s] = true
	}
	if len(names) != 13 {
		t.Errorf("%d names, want 13", len(names))
	}
	if s := BadKind(200).String(); s != "BadKind(200)" {
		t.Errorf("unknown kind: %q", s)
	}
}

func TestEventTimesOutOfOrder(t *testing.T) {
	g := mustNew(t, Config{Seed: 2, OutOfOrder: 500 * time.Millisecond})
	var prev time.Time
	inversions := 0
	var maxLag time.Duration
	for i := range 20000 {
		now := clockAt(i).Add(time.Duration(i%7) * 123 * time.Microsecond) // not on millisecond boundaries
		tx := g.Next(now).Tx
		lag := now.Sub(tx.Time)
		if lag < 0 || lag >= 500*time.Millisecond {
			t.Fatalf("event time %v is %v before now %v", tx.Time, lag, now)
		}
		maxLag = max(maxLag, lag)
		if tx.Time.Before(prev) {
			inversions++
		}
		prev = tx.Time
	}
	if inversions < 5000 || maxLag < 490*time.Millisecond {
		t.Errorf("%d inversions, max lag %v: not out of order enough", inversions, maxLag)
	}

	g = mustNew(t, Config{Seed: 2, OutOfOrder: -1})
	for i := range 1000 {
		now := clockAt(i)
		if tx := g.Next(now).Tx; !tx.Time.Equal(now) {
			t.Fatalf("in-order generator: event time %v, now %v", tx.Time, now)
		}
	}
}

func TestFraudRate(t *testing.T) {
	cases := []struct {
		cfg  Config
		n    int
		want float64
	}{
		{Config{Seed: 1}, 200_000, 0.02},
		{Config{Seed: 2, FraudRate: 0.1, DriftAt: 50_000}, 100_000, 0.1},
		{Config{Seed: 3, FraudRate: 0.005}, 200_000, 0.005},
		{Config{Seed: 4, FraudRate: -1}, 20_000, 0},
		{Config{Seed: 5, FraudRate: 1}, 20_000, 1},
	}
	for _, c := range cases {
		if testing.Short() && c.n > 50_000 {
			c.n = 50_000
		}
		g := mustNew(t, c.cfg)
		fraud, fraudAfter, after := 0, 0, 0
		ids := make(map[string]struct{}, c.n)
		for i := range c.n {
			tx := g.Next(clockAt(i)).Tx
			if tx.Fraud {
				fraud++
			}
			if c.cfg.DriftAt > 0 && int64(i) >= c.cfg.DriftAt {
				after++
				if tx.Fraud {
					fraudAfter++
				}
			}
			ids[tx.EventID] = struct{}{}
		}
		if len(ids) != c.n {
			t.Errorf("%+v: %d distinct event ids of %d", c.cfg, len(ids), c.n)
		}
		rate := float64(fraud) / float64(c.n)
		t.Logf("FraudRate %v: measured %.4f", c.cfg.FraudRate, rate)
		// 12% relative, plus 5 standard errors for the small samples.
		tol := 0.12*c.want + 5*math.Sqrt(c.want*(1-c.want)/float64(c.n))
		if math.Abs(rate-c.want) > tol {
			t.Errorf("FraudRate %v: measured %.4f, want %.4f ± %.4f", c.cfg.FraudRate, rate, c.want, tol)
		}
		if after > 0 {
			ra := float64(fraudAfter) / float64(after)
			if math.Abs(ra-c.want) > 0.15*c.want {
				t.Errorf("after the drift: measured %.4f, want %.4f", ra, c.want)
			}
		}
	}
}

func TestLabels(t *testing.T) {
	const (
		n     = 50_000
		delay = 5 * time.Second
		ratio = 0.6
	)
	g := mustNew(t, Config{Seed: 6, BadRatio: 0.1, LabelRatio: ratio, LabelDelay: delay})
	valid := map[string]Transaction{}
	seen := map[string]bool{}
	var labels []Label
	var lastNow, lastDue time.Time
	check := func(ls []Label, now time.Time, drained bool) {
		for _, l := range ls {
			tx, ok := valid[l.EventID]
			switch {
			case !ok:
				t.Fatalf("label for an unknown or bad event %s", l.EventID)
			case seen[l.EventID]:
				t.Fatalf("event %s labelled twice", l.EventID)
			case l.CardID != tx.CardID || l.Fraud != tx.Fraud || !l.EventTime.Equal(tx.Time):
				t.Fatalf("label %+v does not match %+v", l, tx)
			case !l.Time.Equal(tx.Time.Add(delay)):
				t.Fatalf("label time %v, want event time + %v", l.Time, delay)
			case !drained && l.Time.After(now):
				t.Fatalf("label due %v returned at %v", l.Time, now)
			case !drained && !l.Time.After(lastNow):
				t.Fatalf("label due %v should have been returned at %v already", l.Time, lastNow)
			case l.Time.Before(lastDue):
				t.Fatalf("labels out of due order: %v after %v", l.Time, lastDue)
			}
			seen[l.EventID] = true
			lastDue = l.Time
		}
	}
	nvalid := 0
	for i := range n {
		now := clockAt(i)
		rec := g.Next(now)
		if rec.Bad == NotBad {
			valid[rec.Tx.EventID] = rec.Tx
			nvalid++
		}
		if i%97 == 0 {
			labels = g.DueLabels(labels[:0], now)
			check(labels, now, false)
			lastNow = now
		}
	}
	if len(seen) == 0 {
		t.Fatal("no label came due")
	}
	pending := g.PendingLabels()
	labels = g.DrainLabels(labels[:0])
	if len(labels) != pending || g.PendingLabels() != 0 {
		t.Fatalf("drained %d labels, %d were pending, %d remain", len(labels), pending, g.PendingLabels())
	}
	check(labels, time.Time{}, true)
	r := float64(len(seen)) / float64(nvalid)
	if math.Abs(r-ratio) > 0.02 {
		t.Errorf("label ratio %.3f, want %.2f", r, ratio)
	}
	if g.DueLabels(nil, clockAt(10*n)) != nil {
		t.Error("labels after draining")
	}

	// No labels at all.
	g = mustNew(t, Config{Seed: 6, LabelRatio: -1})
	for i := range 1000 {
		g.Next(clockAt(i))
	}
	if g.PendingLabels() != 0 {
		t.Errorf("LabelRatio < 0 scheduled %d labels", g.PendingLabels())
	}
}

func TestConfig(t *testing.T) {
	var c Config
	if err := c.Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	c.SetDefaults()
	want := Config{Seed: 1, Keys: 10000, ZipfS: 1.1, OutOfOrder: 2 * time.Second, FraudRate: 0.02,
		LabelRatio: 1, LabelDelay: 5 * time.Second, HugeBytes: 128 << 10}
	if fmt.Sprint(c) != fmt.Sprint(want) {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
	c2 := c
	c2.SetDefaults()
	if fmt.Sprint(c) != fmt.Sprint(c2) {
		t.Error("SetDefaults is not idempotent")
	}
	if err := (Config{OutOfOrder: -1, FraudRate: -1, LabelRatio: -1, LabelDelay: -1}).Validate(); err != nil {
		t.Errorf("negative sentinels: %v", err)
	}

	bad := Config{
		Keys: 2_000_000, ZipfS: 0.9, OutOfOrder: 2 * time.Hour, BadRatio: 1.5, BadKinds: []BadKind{NotBad, 99},
		FraudRate: math.NaN(), LabelRatio: 2, LabelDelay: 1000 * time.Hour, DriftAt: -3, HugeBytes: 10,
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, s := range []string{
		"Keys = 2000000", "ZipfS = 0.9", "OutOfOrder = 2h0m0s", "BadRatio = 1.5", "BadKinds[0] = not_bad",
		"BadKinds[1] = BadKind(99)", "FraudRate = NaN", "LabelRatio = 2", "LabelDelay = 1000h0m0s",
		"DriftAt = -3", "HugeBytes = 10", "[1, 1000000]", "(1, 10]", "[0, 1]", "[1024, 16777216]",
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("error does not mention %q:\n%s", s, msg)
		}
	}
	if n := len(strings.Split(msg, "\n")); n != 11 {
		t.Errorf("%d errors, want 11:\n%s", n, msg)
	}
	if _, err := New(bad); err == nil {
		t.Error("New accepted a bad config")
	}
	if _, err := New(Config{ZipfS: math.Inf(1)}); err == nil {
		t.Error("New accepted an infinite ZipfS")
	}
	g := mustNew(t, Config{Keys: 1})
	for i := range 100 {
		if tx := g.Next(clockAt(i)).Tx; tx.CardID != "card-000000" {
			t.Fatalf("one key: card %q", tx.CardID)
		}
	}
	if got := g.Config(); got.Keys != 1 || got.Seed != 1 {
		t.Errorf("Config() = %+v", got)
	}
}

func TestAppendJSON(t *testing.T) {
	tx := Transaction{
		EventID: "a\"b\\c\n\x01", CardID: "caf\xe9", Time: time.Date(2026, 1, 2, 3, 4, 5, 678999999, time.FixedZone("X", 3600)),
		Amount: 1234.5, Merchant: "m\u2028x", Country: "日本", Channel: "pos", MCC: 5411, Fraud: true,
	}
	b := AppendTransactionJSON([]byte("x"), tx)
	if b[0] != 'x' || !json.Valid(b[1:]) || !utf8.Valid(b) {
		t.Fatalf("invalid: %s", b)
	}
	var got struct {
		EventID   string  `json:"event_id"`
		CardID    string  `json:"card_id"`
		EventTime string  `json:"event_time"`
		Amount    float64 `json:"amount"`
		Merchant  string  `json:"merchant"`
		Country   string  `json:"country"`
	}
	if err := json.Unmarshal(b[1:], &got); err != nil {
		t.Fatal(err)
	}
	if got.EventID != tx.EventID || got.CardID != "caf\ufffd" || got.EventTime != "2026-01-02T02:04:05.678Z" ||
		got.Amount != 1234.5 || got.Merchant != tx.Merchant || got.Country != tx.Country {
		t.Errorf("round trip: %+v from %s", got, b)
	}
	if bytes.Contains(b, []byte("fraud")) || !bytes.Contains(b, []byte(`"amount":1234.50,`)) {
		t.Errorf("fraud written or amount format: %s", b)
	}
	for a, want := range map[float64]string{0.1: "0.10", 0.005: "0.01", 99.999: "100.00", -2.5: "-2.50", math.NaN(): "null", math.Inf(1): "null"} {
		if s := string(appendAmount(nil, a)); s != want {
			t.Errorf("amount %v: %s, want %s", a, s, want)
		}
	}

	l := Label{EventID: "e1", CardID: "card-000001", Time: tx.Time.Add(5 * time.Second), EventTime: tx.Time, Fraud: true}
	b = AppendLabelJSON(nil, l)
	want := `{"event_id":"e1","card_id":"card-000001","label":1,"label_time":"2026-01-02T02:04:10.678Z","event_time":"2026-01-02T02:04:05.678Z"}`
	if string(b) != want {
		t.Errorf("label:\n%s\nwant\n%s", b, want)
	}
	l.Fraud = false
	if b = AppendLabelJSON(nil, l); !bytes.Contains(b, []byte(`"label":0,`)) || !json.Valid(b) {
		t.Errorf("label 0: %s", b)
	}
}

func TestNewErrors(t *testing.T) {
	_, err := New(Config{Keys: -1, BadRatio: -1})
	if err == nil || !strings.Contains(err.Error(), "Keys") || !strings.Contains(err.Error(), "BadRatio") {
		t.Errorf("err = %v", err)
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 2 {
		t.Errorf("want two joined errors, got %v", err)
	}
}

// The benchmarks take due labels every 1024 records, as Run does, so the pending set stays at its
// steady size (LabelDelay / clock step = 5000 labels).

func BenchmarkNext(b *testing.B) {
	g := mustNew(b, Config{})
	var buf []byte
	var labels []Label
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rec := g.Next(clockAt(i))
		buf = AppendTransactionJSON(buf[:0], rec.Tx)
		if i%1024 == 0 {
			labels = g.DueLabels(labels[:0], clockAt(i))
		}
	}
}

func BenchmarkAppendNext(b *testing.B) {
	g := mustNew(b, Config{})
	var buf []byte
	var labels []Label
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, buf = g.AppendNext(buf[:0], clockAt(i))
		if i%1024 == 0 {
			labels = g.DueLabels(labels[:0], clockAt(i))
		}
	}
}

package gen

import (
	"fmt"
	"math/rand/v2"
	"time"
	"unsafe"
)

// Transaction is one card transaction.
type Transaction struct {
	EventID  string    // unique per generator, deterministic from the seed and the sequence number: 16 hex digits
	CardID   string    // "card-%06d"
	Time     time.Time // event time, UTC, whole milliseconds
	Amount   float64   // > 0, two decimals
	Merchant string    // "m-%04d"
	Country  string    // ISO 3166-1 alpha-2
	Channel  string    // "pos", "online" or "atm"
	MCC      int       // merchant category code
	Fraud    bool      // ground truth; not written into the transaction JSON
}

// Label tells whether an event was fraud. It becomes due LabelDelay after the event's time.
type Label struct {
	EventID   string
	CardID    string
	Time      time.Time // label time: the event time + LabelDelay
	EventTime time.Time
	Fraud     bool
}

// Record is one generated Kafka record for the transactions topic.
type Record struct {
	Key   []byte // the card id; nil for MissingKey
	Value []byte
	// Tx is the transaction the record was made from. For a bad record that is the transaction before
	// it was broken (an AncientTime record's Tx.Time is the real event time), except NotAnObject,
	// whose Tx is zero.
	Tx  Transaction
	Bad BadKind // NotBad for valid records
}

// BadKind says how a record is deliberately broken.
type BadKind uint8

// The kinds of bad records.
const (
	NotBad          BadKind = iota
	MalformedJSON           // a valid record truncated: not valid JSON
	NotAnObject             // valid JSON, but an array or a string
	MissingKey              // no "card_id" field, and a nil Kafka key
	MissingAmount           // no "amount" field
	AmountNotNumber         // "amount":"abc"
	NegativeAmount          // "amount":-12.34
	NaNAmount               // "amount":NaN, the bare literal: not valid JSON
	AncientTime             // event time on 1970-01-01
	FutureTime              // event time on 2100-01-01
	BadTimeFormat           // "event_time":"yesterday"
	Huge                    // valid JSON of at least HugeBytes, with a long "note" field
	InvalidUTF8             // invalid UTF-8 bytes inside the merchant string (otherwise valid JSON syntax)
	numBadKinds
)

var badKindNames = [numBadKinds]string{
	"not_bad", "malformed_json", "not_an_object", "missing_key", "missing_amount", "amount_not_number",
	"negative_amount", "nan_amount", "ancient_time", "future_time", "bad_time_format", "huge", "invalid_utf8",
}

func (k BadKind) String() string {
	if k < numBadKinds {
		return badKindNames[k]
	}
	return fmt.Sprintf("BadKind(%d)", uint8(k))
}

// BadKinds lists every bad kind (NotBad excluded).
func BadKinds() []BadKind {
	ks := make([]BadKind, 0, numBadKinds-1)
	for k := MalformedJSON; k < numBadKinds; k++ {
		ks = append(ks, k)
	}
	return ks
}

// burstSlots is how many compromised cards are being abused at any time.
const burstSlots = 4

type burst struct {
	card      uint32
	remaining int32
}

// fraud modes
const (
	fraudModel uint8 = iota // Bernoulli from the logistic model
	fraudNever
	fraudAlways
)

// Generator generates a deterministic stream of transactions and their labels. It is not safe for
// concurrent use.
type Generator struct {
	cfg     Config
	seq     int64
	seedKey uint64

	rTx    *rand.Rand // cards, traits, times, ground truth
	rBad   *rand.Rand // which records are broken and how
	rLabel *rand.Rand // which events get labels

	keys     uint64
	cardZipf *rand.Zipf
	permA    uint64 // Zipf rank -> card: (rank*permA + permB) mod keys, a bijection
	permB    uint64
	cardIDs  []byte // keys × cardIDLen bytes, "card-000000card-000001..."; never modified

	merchants   [numMerchants]string
	mccMerchant [numMCCs][]uint16
	mccZipf     [numMCCs]*rand.Zipf

	slots      [burstSlots]burst
	attackFrac float64
	fraudMode  uint8
	intercept  [2]float64 // before, after the drift

	oooMs      int64
	labelDelay time.Duration
	labelRatio float64
	badKinds   []BadKind

	pending labelHeap
	scratch []byte
}

const cardIDLen = len("card-000000")

// New returns a generator for cfg, defaults applied.
func New(cfg Config) (*Generator, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.BadKinds = append([]BadKind(nil), cfg.BadKinds...)
	g := &Generator{
		cfg:        cfg,
		seedKey:    mix64(uint64(cfg.Seed) ^ 0x5eed_5eed_5eed_5eed),
		keys:       uint64(cfg.Keys),
		oooMs:      max(cfg.OutOfOrder.Milliseconds(), 0),
		labelDelay: max(cfg.LabelDelay, 0),
		labelRatio: max(cfg.LabelRatio, 0),
		badKinds:   cfg.BadKinds,
	}
	if len(g.badKinds) == 0 {
		g.badKinds = BadKinds()
	}
	stream := func(i uint64) *rand.Rand {
		return rand.New(rand.NewPCG(g.seedKey, mix64(g.seedKey+i)))
	}
	g.rTx, g.rBad, g.rLabel = stream(1), stream(2), stream(3)
	setup := stream(4)

	// Cards: a Zipf rank mapped to a card by a seeded bijection, so the hot cards are scattered.
	g.cardZipf = rand.NewZipf(g.rTx, cfg.ZipfS, 1, g.keys-1)
	g.permA = uint64(float64(g.keys)*0.6180339887) | 1
	for gcd(g.permA, g.keys) != 1 {
		g.permA++
	}
	g.permB = setup.Uint64N(g.keys)
	g.cardIDs = make([]byte, cfg.Keys*cardIDLen)
	for i := range cfg.Keys {
		id := appendPadded(append(make([]byte, 0, cardIDLen), "card-"...), uint64(i), 6)
		copy(g.cardIDs[i*cardIDLen:], id)
	}

	// Merchants: each has a category; within a category a few merchants take most purchases.
	for m := range numMerchants {
		g.merchants[m] = fmt.Sprintf("m-%04d", m)
		c := m // the first merchants cover every category once
		if m >= numMCCs {
			c = merchantMCC.pick(setup.Float64())
		}
		g.mccMerchant[c] = append(g.mccMerchant[c], uint16(m))
	}
	for c := range numMCCs {
		setup.Shuffle(len(g.mccMerchant[c]), func(i, j int) {
			g.mccMerchant[c][i], g.mccMerchant[c][j] = g.mccMerchant[c][j], g.mccMerchant[c][i]
		})
		if n := len(g.mccMerchant[c]); n > 1 {
			g.mccZipf[c] = rand.NewZipf(g.rTx, 1.2, 2, uint64(n-1))
		}
	}

	// Fraud.
	switch {
	case cfg.FraudRate < 0:
		g.fraudMode = fraudNever
	case cfg.FraudRate >= 1:
		g.fraudMode = fraudAlways
		g.attackFrac = attackFraction(1)
	default:
		g.attackFrac = attackFraction(cfg.FraudRate)
		g.intercept[0] = calibrate(setup, g.home, cfg.Keys, g.attackFrac, cfg.FraudRate, false)
		if cfg.DriftAt > 0 {
			g.intercept[1] = calibrate(setup, g.home, cfg.Keys, g.attackFrac, cfg.FraudRate, true)
		}
	}
	return g, nil
}

// Config returns the generator's configuration, defaults applied.
func (g *Generator) Config() Config {
	c := g.cfg
	c.BadKinds = append([]BadKind(nil), c.BadKinds...)
	return c
}

// Seq returns the number of records generated so far (the sequence number of the next one).
func (g *Generator) Seq() int64 { return g.seq }

// Drifted reports whether the next record is generated with the drifted fraud pattern.
func (g *Generator) Drifted() bool { return g.cfg.DriftAt > 0 && g.seq >= g.cfg.DriftAt }

// PendingLabels returns the number of labels scheduled but not yet returned by DueLabels or DrainLabels.
func (g *Generator) PendingLabels() int { return len(g.pending) }

// Next generates the next record with event-time clock now. The result is deterministic given the seed
// and the sequence of now values; only the event times depend on now. Key and Value share one freshly
// allocated array that the caller owns.
func (g *Generator) Next(now time.Time) Record {
	rec, buf, k := g.next(g.scratch[:0], now)
	out := make([]byte, len(buf))
	copy(out, buf)
	if cap(buf) <= 4<<10 {
		g.scratch = buf[:0]
	}
	if k > 0 {
		rec.Key = out[:k:k]
	}
	rec.Value = out[k:]
	return rec
}

// AppendNext is Next appending the record's key and then its value to dst; it returns the record and
// the extended slice. Key and Value alias the extended slice (Key with its capacity capped), so they
// are valid until the caller reuses it. With a reused dst it allocates only the Transaction's EventID.
func (g *Generator) AppendNext(dst []byte, now time.Time) (Record, []byte) {
	start := len(dst)
	rec, buf, k := g.next(dst, now)
	if k > 0 {
		rec.Key = buf[start : start+k : start+k]
	}
	rec.Value = buf[start+k:]
	return rec, buf
}

// next appends the key (none for MissingKey) and the value of the next record to dst; it returns the
// record without Key and Value, the grown buffer, and the key length.
func (g *Generator) next(dst []byte, now time.Time) (rec Record, buf []byte, keyLen int) {
	seq := g.seq
	g.seq++
	drifted := g.cfg.DriftAt > 0 && seq >= g.cfg.DriftAt
	r := g.rTx

	// Whose card, and is it a fraudster using it?
	attack := g.attackFrac > 0 && r.Float64() < g.attackFrac
	var card uint32
	if attack {
		s := &g.slots[r.IntN(burstSlots)]
		if s.remaining <= 0 {
			// A fresh card gets compromised: fraudsters do not choose by popularity.
			s.card = uint32(r.Uint64N(g.keys))
			s.remaining = 3 + r.Int32N(28)
		}
		card = s.card
		s.remaining--
	} else {
		card = uint32((g.cardZipf.Uint64()*g.permA + g.permB) % g.keys)
	}

	t := drawTraits(r, g.home(int(card)), attack, drifted)
	merchant := g.merchant(r, t.mcc, attack)
	ms := now.UnixMilli()
	if g.oooMs > 0 {
		ms -= r.Int64N(g.oooMs)
	}
	fraud := false
	switch g.fraudMode {
	case fraudAlways:
		fraud = true
	case fraudModel:
		idx := 0
		if drifted {
			idx = 1
		}
		fraud = r.Float64() < sigmoid(g.intercept[idx]+logit(&t, drifted))
	}

	tx := Transaction{
		EventID:  eventID(g.seedKey, uint64(seq)),
		CardID:   g.cardID(card),
		Time:     time.UnixMilli(ms).UTC(),
		Amount:   float64(t.cents) / 100,
		Merchant: g.merchants[merchant],
		Country:  countries[t.country].code,
		Channel:  channelNames[t.channel],
		MCC:      mccs[t.mcc].code,
		Fraud:    fraud,
	}

	// Broken?
	kind := NotBad
	if g.cfg.BadRatio > 0 && g.rBad.Float64() < g.cfg.BadRatio {
		kind = g.badKinds[g.rBad.IntN(len(g.badKinds))]
	}
	// Labelled? Drawn for every record so the labelled set does not shift with BadRatio more than needed.
	labelled := g.labelRatio > 0 && g.rLabel.Float64() < g.labelRatio

	start := len(dst)
	if kind != MissingKey {
		dst = append(dst, tx.CardID...)
	}
	keyLen = len(dst) - start
	if kind == NotBad {
		dst = AppendTransactionJSON(dst, tx)
		if labelled {
			g.pending.push(pendingLabel{
				due:   ms*int64(time.Millisecond) + int64(g.labelDelay),
				event: ms,
				seq:   uint64(seq),
				card:  card,
				fraud: fraud,
			})
		}
	} else {
		dst = g.appendBad(dst, &tx, kind)
		if kind == NotAnObject {
			tx = Transaction{}
		}
	}
	rec.Tx, rec.Bad = tx, kind
	return rec, dst, keyLen
}

// merchant draws a merchant of category c: legitimate purchases favour the big merchants, fraudsters
// spread over many.
func (g *Generator) merchant(r *rand.Rand, c uint8, attack bool) uint16 {
	ms := g.mccMerchant[c]
	if len(ms) == 1 {
		return ms[0]
	}
	if attack {
		return ms[r.IntN(len(ms))]
	}
	return ms[g.mccZipf[c].Uint64()]
}

// home returns the home country of a card, fixed by the seed.
func (g *Generator) home(card int) uint8 {
	h := mix64(g.seedKey ^ (uint64(card)+1)*0x9e3779b97f4a7c15)
	return uint8(homeTable.pick(float64(h>>11) / (1 << 53)))
}

func (g *Generator) cardID(card uint32) string {
	i := int(card) * cardIDLen
	return unsafe.String(&g.cardIDs[i], cardIDLen)
}

// DueLabels appends to dst the labels whose due time (event time + LabelDelay) is at or before now, in
// due order (ties in generation order), removes them from the pending set, and returns dst. A label
// is scheduled, with probability LabelRatio, for every valid record (never for bad ones).
func (g *Generator) DueLabels(dst []Label, now time.Time) []Label {
	limit := now.UnixNano()
	for len(g.pending) > 0 && g.pending[0].due <= limit {
		dst = append(dst, g.label(g.pending.pop()))
	}
	return dst
}

// DrainLabels appends every pending label to dst in due order, due or not, and returns dst.
func (g *Generator) DrainLabels(dst []Label) []Label {
	for len(g.pending) > 0 {
		dst = append(dst, g.label(g.pending.pop()))
	}
	return dst
}

func (g *Generator) label(p pendingLabel) Label {
	return Label{
		EventID:   eventID(g.seedKey, p.seq),
		CardID:    g.cardID(p.card),
		Time:      time.Unix(0, p.due).UTC(),
		EventTime: time.UnixMilli(p.event).UTC(),
		Fraud:     p.fraud,
	}
}

// pendingLabel is a scheduled label, kept small: a long label delay at a high rate keeps many.
type pendingLabel struct {
	due   int64 // Unix nanoseconds
	event int64 // Unix milliseconds
	seq   uint64
	card  uint32
	fraud bool
}

func (a *pendingLabel) less(b *pendingLabel) bool {
	return a.due < b.due || a.due == b.due && a.seq < b.seq
}

// labelHeap is a binary min-heap by (due, seq).
type labelHeap []pendingLabel

func (h *labelHeap) push(p pendingLabel) {
	*h = append(*h, p)
	s := *h
	i := len(s) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !s[i].less(&s[parent]) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *labelHeap) pop() pendingLabel {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s[r].less(&s[l]) {
			m = r
		}
		if !s[m].less(&s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// mix64 is the SplitMix64 finalizer, a bijection on uint64.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// eventID is 16 hex digits of a bijection of the sequence number keyed by the seed: unique within a
// generator, different across seeds.
func eventID(seedKey, seq uint64) string {
	const hex = "0123456789abcdef"
	v := mix64(seedKey + seq*0x9e3779b97f4a7c15)
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hex[v&15]
		v >>= 4
	}
	return string(b[:])
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// appendPadded appends v in decimal, zero-padded to width digits.
func appendPadded(dst []byte, v uint64, width int) []byte {
	var b [20]byte
	i := len(b)
	for v > 0 || i > len(b)-width {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[i:]...)
}

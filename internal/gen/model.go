package gen

import (
	"math"
	"math/rand/v2"
)

// This file holds the world the transactions are drawn from (countries, channels, merchant category
// codes) and the fraud model: how a transaction's traits are drawn, normally and by a fraudster, before
// and after the drift, and the logistic function that turns traits into the fraud ground truth.

// Channels.
const (
	chPOS uint8 = iota
	chOnline
	chATM
	numChannels
)

var channelNames = [numChannels]string{"pos", "online", "atm"}

// mcc describes a merchant category.
type mcc struct {
	code   int
	median float64 // typical amount of a legitimate purchase
	pos    float64 // weight among legitimate in-person purchases
	online float64 // weight among legitimate online purchases
	// share of the merchant population (merchant ids are assigned to categories by this weight)
	merchants float64
	risky     bool // targeted by fraudsters before the drift
	drift     bool // targeted by fraudsters after the drift
}

const mccATM = 14 // index of 6011 in mccs

var mccs = [...]mcc{
	{code: 5411, median: 42, pos: .28, online: .04, merchants: .14, drift: true},  // grocery
	{code: 5812, median: 38, pos: .16, online: 0, merchants: .16},                 // restaurants
	{code: 5814, median: 14, pos: .14, online: .14, merchants: .12},               // fast food, delivery
	{code: 5541, median: 48, pos: .12, online: 0, merchants: .08, drift: true},    // fuel
	{code: 5311, median: 70, pos: .07, online: .12, merchants: .05, drift: true},  // department stores
	{code: 5912, median: 22, pos: .08, online: .03, merchants: .06, drift: true},  // drug stores
	{code: 5999, median: 35, pos: .07, online: .27, merchants: .13},               // misc. retail
	{code: 4121, median: 24, pos: .04, online: .10, merchants: .04},               // taxi, ride sharing
	{code: 5732, median: 240, pos: .02, online: .10, merchants: .05, risky: true}, // electronics
	{code: 5944, median: 380, pos: .01, online: .02, merchants: .03, risky: true}, // jewelry
	{code: 4511, median: 420, pos: 0, online: .05, merchants: .01},                // airlines
	{code: 5967, median: 30, pos: 0, online: .05, merchants: .03, risky: true},    // direct marketing
	{code: 7995, median: 80, pos: 0, online: .03, merchants: .02, risky: true},    // gambling
	{code: 4829, median: 220, pos: 0, online: .05, merchants: .02, risky: true},   // money transfer
	{code: 6011, median: 100, pos: 0, online: 0, merchants: .06},                  // ATM cash
}

const numMCCs = len(mccs)

// numMerchants is the size of the merchant population, "m-0000" .. "m-2999".
const numMerchants = 3000

// country is an ISO 3166-1 alpha-2 code with two weights: how many cards are issued there (home) and
// how often fraudsters transact from there.
type country struct {
	code  string
	home  float64
	fraud float64
}

var countries = [...]country{
	{"US", .30, .08}, {"GB", .09, .06}, {"DE", .09, .02}, {"FR", .08, .02}, {"ES", .05, .02},
	{"IT", .05, .02}, {"NL", .04, .02}, {"PL", .04, .02}, {"SE", .03, .01}, {"CA", .05, .02},
	{"MX", .03, .04}, {"BR", .04, .10}, {"IN", .04, .05}, {"JP", .03, .01}, {"AU", .04, .01},
	{"NG", 0, .14}, {"RO", 0, .10}, {"ID", 0, .08}, {"VN", 0, .07}, {"CN", 0, .06},
	{"PH", 0, .05}, {"UA", 0, .04},
}

const numCountries = len(countries)

// table is a cumulative distribution over indexes, drawn with one uniform number.
type table []float64

func newTable(weights []float64) table {
	t := make(table, len(weights))
	var sum float64
	for i, w := range weights {
		sum += w
		t[i] = sum
	}
	for i := range t {
		t[i] /= sum
	}
	t[len(t)-1] = 1
	return t
}

func (t table) pick(u float64) int {
	for i, c := range t {
		if u < c {
			return i
		}
	}
	return len(t) - 1
}

// The distributions, built once.
var (
	homeTable, travelTable, fraudCountryTable  table
	normalChannel, attackChannel, driftChannel table
	normalMCC                                  [numChannels]table // by channel
	riskyOnlineMCC, riskyPOSMCC, driftPOSMCC   table
	merchantMCC                                table
)

func init() {
	var home, fraud [numCountries]float64
	for i, c := range countries {
		home[i], fraud[i] = c.home, c.fraud
	}
	homeTable = newTable(home[:])
	travelTable = homeTable // travellers go where cards come from
	fraudCountryTable = newTable(fraud[:])

	normalChannel = newTable([]float64{.62, .32, .06})
	attackChannel = newTable([]float64{.40, .48, .12})
	driftChannel = newTable([]float64{.80, .15, .05})

	var pos, online, merch [numMCCs]float64
	var riskyOnline, riskyPOS, driftPOS [numMCCs]float64
	for i, m := range mccs {
		pos[i], online[i], merch[i] = m.pos, m.online, m.merchants
		if m.risky {
			riskyOnline[i] = 1
			if m.pos > 0 {
				riskyPOS[i] = 1
			}
		}
		if m.drift {
			driftPOS[i] = 1
		}
	}
	riskyOnline[8], riskyOnline[13] = 3, 2 // electronics and money transfer are the favourites
	normalMCC[chPOS] = newTable(pos[:])
	normalMCC[chOnline] = newTable(online[:])
	atm := make([]float64, numMCCs)
	atm[mccATM] = 1
	normalMCC[chATM] = newTable(atm)
	riskyOnlineMCC = newTable(riskyOnline[:])
	riskyPOSMCC = newTable(riskyPOS[:])
	driftPOSMCC = newTable(driftPOS[:])
	merchantMCC = newTable(merch[:])
}

// traits are what the fraud ground truth depends on.
type traits struct {
	attack  bool  // made by a fraudster on a compromised card
	foreign bool  // country != the card's home country
	country uint8 // index in countries
	channel uint8
	mcc     uint8 // index in mccs
	cents   int64 // amount in cents, > 0
}

// drawTraits draws a transaction's traits for a card whose home country is home.
func drawTraits(r *rand.Rand, home uint8, attack, drifted bool) traits {
	t := traits{attack: attack, country: home}
	var pForeign, sigma, median float64
	switch {
	case !attack:
		pForeign = 0.04
		t.channel = uint8(normalChannel.pick(r.Float64()))
		t.mcc = uint8(normalMCC[t.channel].pick(r.Float64()))
		median, sigma = mccs[t.mcc].median, 0.85
	case !drifted:
		// Card-not-present fraud from abroad: online or ATM, risky categories, high amounts.
		pForeign = 0.45
		t.channel = uint8(attackChannel.pick(r.Float64()))
		t.mcc = uint8(normalMCC[t.channel].pick(r.Float64()))
		switch u := r.Float64(); {
		case t.channel == chOnline && u < 0.5:
			t.mcc = uint8(riskyOnlineMCC.pick(r.Float64()))
		case t.channel == chPOS && u < 0.3:
			t.mcc = uint8(riskyPOSMCC.pick(r.Float64()))
		}
		median, sigma = 1.6*mccs[t.mcc].median, 0.8
	default:
		// After the drift: cloned cards used at home, in person, mid amounts at everyday categories.
		pForeign = 0.08
		t.channel = uint8(driftChannel.pick(r.Float64()))
		t.mcc = uint8(normalMCC[t.channel].pick(r.Float64()))
		if t.channel == chPOS && r.Float64() < 0.85 {
			t.mcc = uint8(driftPOSMCC.pick(r.Float64()))
		}
		median, sigma = 120, 0.3
	}
	if r.Float64() < pForeign {
		tab := travelTable
		if attack {
			tab = fraudCountryTable
		}
		// Redraw a few times to get away from home; a table always has other countries.
		for range 8 {
			if c := uint8(tab.pick(r.Float64())); c != home {
				t.country, t.foreign = c, true
				break
			}
		}
	}
	amount := median * math.Exp(sigma*r.NormFloat64())
	if t.mcc == mccATM {
		// Cash comes in multiples of 20.
		amount = 20 * math.Round(amount/20)
		amount = min(max(amount, 20), 2000)
	}
	t.cents = int64(math.Round(min(max(amount, 0.5), 20000) * 100))
	return t
}

// Weights of the fraud logit. The intercept is calibrated per generator (see calibrate).
const (
	wAttack = 4.5

	// Before the drift.
	wForeign = 1.3
	wOnline  = 0.6
	wATM     = 0.9
	wLogAmt  = 0.45 // per unit of ln(amount / 50)
	wRisky   = 1.0

	// After the drift.
	wDriftForeign = -0.6
	wDriftPOS     = 0.9
	wDriftMidAmt  = 1.0 // amount in [60, 250]
	wDriftMCC     = 1.0
)

// logit is the fraud log-odds of t without the intercept.
func logit(t *traits, drifted bool) float64 {
	var z float64
	if t.attack {
		z += wAttack
	}
	if !drifted {
		if t.foreign {
			z += wForeign
		}
		switch t.channel {
		case chOnline:
			z += wOnline
		case chATM:
			z += wATM
		}
		z += wLogAmt * math.Log(float64(t.cents)/5000)
		if mccs[t.mcc].risky {
			z += wRisky
		}
		return z
	}
	if t.foreign {
		z += wDriftForeign
	}
	if t.channel == chPOS {
		z += wDriftPOS
	}
	if t.cents >= 6000 && t.cents <= 25000 {
		z += wDriftMidAmt
	}
	if mccs[t.mcc].drift {
		z += wDriftMCC
	}
	return z
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// attackFraction is the share of records made by fraudsters for a fraud rate: most fraud comes from
// compromised cards, some from legitimate-looking transactions with risky traits.
func attackFraction(fraudRate float64) float64 {
	return min(0.5, 1.25*fraudRate)
}

// calibrationSamples is the number of normal and of attack transactions drawn to calibrate an
// intercept.
const calibrationSamples = 8000

// calibrate returns the intercept b such that the expected fraud rate of the mixture of normal
// transactions (share 1-c) and attack transactions (share c) is rate, by bisection over Monte Carlo
// samples of the traits drawn from r.
func calibrate(r *rand.Rand, home func(card int) uint8, keys int, c, rate float64, drifted bool) float64 {
	var zn, za [calibrationSamples]float64
	for i := range calibrationSamples {
		t := drawTraits(r, home(r.IntN(keys)), false, drifted)
		zn[i] = logit(&t, drifted)
		t = drawTraits(r, home(r.IntN(keys)), true, drifted)
		za[i] = logit(&t, drifted)
	}
	expected := func(b float64) float64 {
		var sn, sa float64
		for i := range calibrationSamples {
			sn += sigmoid(zn[i] + b)
			sa += sigmoid(za[i] + b)
		}
		return ((1-c)*sn + c*sa) / calibrationSamples
	}
	lo, hi := -40.0, 40.0
	for range 50 {
		mid := (lo + hi) / 2
		if expected(mid) < rate {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// AdGen generates the Yahoo Streaming Benchmark's input, deterministically from a seed: a campaign
// table (each of Campaigns campaigns owns AdsPerCampaign ads) and ad events, each by a user on a
// page, of one of five ad types and one of three event types (view, click, purchase, equally
// often), with an event time up to OutOfOrder behind the time it is generated at.
//
// Each event carries its ad's campaign_id besides the ad_id, and is keyed by it: streamd, which has
// no join with a table yet, counts by that field; Kafka Streams and Flink join the ad id with the
// table instead and ignore it. The checker joins with the table and so checks that both agree.
type AdGen struct {
	Campaigns, AdsPerCampaign int
	OutOfOrder                time.Duration
	rng                       *rand.Rand
	buf                       []byte
}

// NewAdGen returns a generator of the benchmark's usual size (100 campaigns of 10 ads) seeded with
// seed, its events at most 1 s out of order.
func NewAdGen(seed uint64) *AdGen {
	return &AdGen{Campaigns: 100, AdsPerCampaign: 10, OutOfOrder: time.Second, rng: rand.New(rand.NewPCG(seed, seed^0x5eed))}
}

var (
	adTypes    = []string{"banner", "modal", "sponsored-search", "mail", "mobile"}
	eventTypes = []string{"view", "click", "purchase"}
)

// AdID and CampaignID name ad a and campaign c (fixed widths, so that records have one size).
func AdID(a int) string       { return fmt.Sprintf("ad-%05d", a) }
func CampaignID(c int) string { return fmt.Sprintf("camp-%04d", c) }

// Table returns the campaign table: ad id → campaign id. Ad a belongs to campaign a / AdsPerCampaign.
func (g *AdGen) Table() map[string]string {
	t := make(map[string]string, g.Campaigns*g.AdsPerCampaign)
	for a := range g.Campaigns * g.AdsPerCampaign {
		t[AdID(a)] = CampaignID(a / g.AdsPerCampaign)
	}
	return t
}

// Next returns the next event, generated at now: its key (the campaign id) and its JSON value. The
// returned slices are valid until the next call.
func (g *AdGen) Next(now time.Time) (key, value []byte) {
	ad := g.rng.IntN(g.Campaigns * g.AdsPerCampaign)
	campaign := CampaignID(ad / g.AdsPerCampaign)
	ts := now.Add(-time.Duration(g.rng.Int64N(int64(g.OutOfOrder/time.Millisecond)+1)) * time.Millisecond)
	b := append(g.buf[:0], `{"user_id":"`...)
	b = appendHex(b, g.rng.Uint64())
	b = append(b, `","page_id":"`...)
	b = appendHex(b, g.rng.Uint64())
	b = append(b, `","ad_id":"`...)
	b = append(b, AdID(ad)...)
	b = append(b, `","campaign_id":"`...)
	b = append(b, campaign...)
	b = append(b, `","ad_type":"`...)
	b = append(b, adTypes[g.rng.IntN(len(adTypes))]...)
	b = append(b, `","event_type":"`...)
	b = append(b, eventTypes[g.rng.IntN(len(eventTypes))]...)
	b = append(b, `","event_time":"`...)
	b = ts.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","ip_address":"198.51.100.`...)
	b = strconv.AppendInt(b, int64(g.rng.IntN(256)), 10)
	b = append(b, `"}`...)
	g.buf = b
	k := len(b)
	g.buf = append(g.buf, campaign...)
	return g.buf[k:], g.buf[:k]
}

func appendHex(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		b = append(b, digits[(v>>uint(i))&0xf])
	}
	return b
}

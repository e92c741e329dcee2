package jsonscan

import (
	"encoding/json"
	"testing"
)

// BenchmarkScan is the hot-path figure: one typical record, the five fields a fraud pipeline reads.
func BenchmarkScan(b *testing.B) {
	var sc Scanner
	schema := NewSchema("card_id", "event_time", "amount", "merchant", "country")
	vals := make([]Value, schema.Len())
	data := []byte(record)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := sc.Scan(data, schema, vals); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanFloat adds what a decoder does next with the number (amount), for a fair comparison
// with encoding/json, which converts it.
func BenchmarkScanFloat(b *testing.B) {
	var sc Scanner
	schema := NewSchema("card_id", "event_time", "amount", "merchant", "country")
	vals := make([]Value, schema.Len())
	data := []byte(record)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := sc.Scan(data, schema, vals); err != nil {
			b.Fatal(err)
		}
		if _, err := vals[2].Float(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanEscaped is a record whose wanted strings have escapes (decoded into scratch) and a
// schema large enough for the map lookup.
func BenchmarkScanEscaped(b *testing.B) {
	var sc Scanner
	schema := NewSchema("card_id", "event_time", "amount", "merchant", "country", "a", "b", "c", "d")
	vals := make([]Value, schema.Len())
	data := []byte(`{"event_id":"9f1c2a7e4b3d","card_id":"card\u002d004211","event_time":"2026-11-25T21:18:33.123Z","amount":42.17,"merchant":"M\u00fcller \"GmbH\"","country":"DE","tags":["a",{"b":null}],"mcc":5411}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := sc.Scan(data, schema, vals); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodingJSON is the baseline: encoding/json decoding the same record into a struct with the
// same five fields.
func BenchmarkEncodingJSON(b *testing.B) {
	type txn struct {
		CardID    string  `json:"card_id"`
		EventTime string  `json:"event_time"`
		Amount    float64 `json:"amount"`
		Merchant  string  `json:"merchant"`
		Country   string  `json:"country"`
	}
	data := []byte(record)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var t txn
		if err := json.Unmarshal(data, &t); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONValid is encoding/json's validation pass alone, which Unmarshal runs before decoding.
func BenchmarkJSONValid(b *testing.B) {
	data := []byte(record)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if !json.Valid(data) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkAppendString(b *testing.B) {
	s := []byte("2026-11-25T21:18:33.123Z card-004211 \"m-0193\"")
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = AppendString(buf[:0], s)
	}
}

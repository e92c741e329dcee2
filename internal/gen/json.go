package gen

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// timeLayout is RFC 3339 with milliseconds; with a UTC time it ends in "Z".
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// AppendTransactionJSON appends tx as one JSON object (no newline) and returns the extended slice:
//
//	{"event_id":"…","card_id":"…","event_time":"2026-01-02T03:04:05.678Z","amount":12.34,
//	 "merchant":"…","country":"…","channel":"…","mcc":5411}
//
// The time is written in UTC with milliseconds, the amount with two decimals (null if not finite).
// Fraud, the ground truth, is not written.
func AppendTransactionJSON(dst []byte, tx Transaction) []byte {
	return appendTx(dst, &tx, NotBad, 0)
}

// AppendLabelJSON appends l as one JSON object (no newline) and returns the extended slice:
//
//	{"event_id":"…","card_id":"…","label":1,"label_time":"…","event_time":"…"}
func AppendLabelJSON(dst []byte, l Label) []byte {
	dst = append(dst, `{"event_id":`...)
	dst = appendString(dst, l.EventID)
	dst = append(dst, `,"card_id":`...)
	dst = appendString(dst, l.CardID)
	if l.Fraud {
		dst = append(dst, `,"label":1`...)
	} else {
		dst = append(dst, `,"label":0`...)
	}
	dst = append(dst, `,"label_time":`...)
	dst = appendTime(dst, l.Time)
	dst = append(dst, `,"event_time":`...)
	dst = appendTime(dst, l.EventTime)
	return append(dst, '}')
}

// appendTx writes tx, broken as kind says (NotBad: not at all). NotAnObject and MalformedJSON are
// handled by appendBad.
func appendTx(dst []byte, tx *Transaction, kind BadKind, hugeBytes int) []byte {
	start := len(dst)
	dst = append(dst, `{"event_id":`...)
	dst = appendString(dst, tx.EventID)
	if kind != MissingKey {
		dst = append(dst, `,"card_id":`...)
		dst = appendString(dst, tx.CardID)
	}
	dst = append(dst, `,"event_time":`...)
	switch kind {
	case AncientTime, FutureTime:
		year := 1970
		if kind == FutureTime {
			year = 2100
		}
		// Keep the time of day so the broken times are not all alike.
		t := tx.Time.UTC()
		tod := t.Sub(t.Truncate(24 * time.Hour))
		dst = appendTime(dst, time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).Add(tod))
	case BadTimeFormat:
		dst = append(dst, `"yesterday"`...)
	default:
		dst = appendTime(dst, tx.Time)
	}
	switch kind {
	case MissingAmount:
	case AmountNotNumber:
		dst = append(dst, `,"amount":"abc"`...)
	case NaNAmount:
		dst = append(dst, `,"amount":NaN`...)
	case NegativeAmount:
		dst = append(dst, `,"amount":`...)
		dst = appendAmount(dst, -math.Abs(tx.Amount))
	default:
		dst = append(dst, `,"amount":`...)
		dst = appendAmount(dst, tx.Amount)
	}
	dst = append(dst, `,"merchant":`...)
	if kind == InvalidUTF8 {
		// A truncated two-byte sequence and a byte that never occurs in UTF-8.
		dst = append(dst, '"')
		dst = append(dst, tx.Merchant...)
		dst = append(dst, "\xc3(\xff"...)
		dst = append(dst, '"')
	} else {
		dst = appendString(dst, tx.Merchant)
	}
	dst = append(dst, `,"country":`...)
	dst = appendString(dst, tx.Country)
	dst = append(dst, `,"channel":`...)
	dst = appendString(dst, tx.Channel)
	dst = append(dst, `,"mcc":`...)
	dst = strconv.AppendInt(dst, int64(tx.MCC), 10)
	if kind == Huge {
		const open, closing = `,"note":"`, `"}`
		n := max(hugeBytes-(len(dst)-start)-len(open)-len(closing), 1)
		dst = append(dst, open...)
		for n > 0 {
			c := min(n, len(lorem))
			dst = append(dst, lorem[:c]...)
			n -= c
		}
		return append(dst, closing...)
	}
	return append(dst, '}')
}

const lorem = "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. "

// appendBad appends tx broken as kind says.
func (g *Generator) appendBad(dst []byte, tx *Transaction, kind BadKind) []byte {
	switch kind {
	case MalformedJSON:
		// Any strict prefix of a JSON object is invalid JSON.
		start := len(dst)
		dst = appendTx(dst, tx, NotBad, 0)
		n := len(dst) - start
		cut := n/4 + g.rBad.IntN(n-n/4-1) // in [n/4, n-2]
		return dst[:start+cut]
	case NotAnObject:
		if g.rBad.IntN(2) == 0 {
			dst = append(dst, '[')
			dst = appendString(dst, tx.EventID)
			dst = append(dst, ',')
			dst = appendString(dst, tx.CardID)
			dst = append(dst, ',')
			dst = appendAmount(dst, tx.Amount)
			return append(dst, ']')
		}
		dst = append(dst, '"')
		dst = append(dst, tx.CardID...)
		dst = append(dst, ' ')
		dst = appendAmount(dst, tx.Amount)
		return append(dst, '"')
	default:
		return appendTx(dst, tx, kind, g.cfg.HugeBytes)
	}
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, timeLayout)
	return append(dst, '"')
}

// appendAmount writes a with exactly two decimals, null if it is not finite.
func appendAmount(dst []byte, a float64) []byte {
	switch {
	case math.IsNaN(a) || math.IsInf(a, 0):
		return append(dst, "null"...)
	case math.Abs(a) >= 1e15:
		return strconv.AppendFloat(dst, a, 'f', 2, 64)
	}
	cents := int64(math.Round(a * 100))
	if cents < 0 {
		dst = append(dst, '-')
		cents = -cents
	}
	dst = strconv.AppendInt(dst, cents/100, 10)
	dst = append(dst, '.')
	return appendPadded(dst, uint64(cents%100), 2)
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as encoding/json does.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < utf8.RuneSelf && s[i] != '"' && s[i] != '\\' {
		i++
	}
	if i == len(s) {
		dst = append(dst, s...)
		return append(dst, '"')
	}
	dst = append(dst, s[:i]...)
	const hex = "0123456789abcdef"
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&15])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

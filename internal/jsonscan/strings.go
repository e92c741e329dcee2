package jsonscan

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// plain marks the bytes that need no attention inside a string: everything except '"', '\\' and the
// control characters below 0x20, which JSON forbids unescaped. Bytes >= 0x80 are plain: like
// encoding/json, the scanner does not validate UTF-8 (see the package documentation).
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Constants for the 8-bytes-at-a-time string scan.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special8 returns a mask whose lowest set bit is the high bit of the first byte of x (in little-endian
// order, i.e. memory order) that is '"', '\\' or < 0x20, or 0 if there is none. It is the classic
// "has a zero byte" test, (v-0x01..)&^v&0x80.., applied to x^'"', x^'\\' and, as "has a byte < 0x20",
// to x itself. Each test can flag false positives, but only in bytes above a true one (they come from
// the borrow of a true hit), so the lowest flagged byte is always a true hit.
func special8(x uint64) uint64 {
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	return ((q-ones)&^q | (b-ones)&^b | (x-ones*0x20)&^x) & highs
}

// scanString validates the string whose opening quote is at data[i-1] and returns the index of its
// closing quote and whether it contains escape sequences (and so must be decoded before use).
//
// Record strings are short (ids, codes, timestamps), but checking 8 bytes per step with special8 still
// takes about a fifth off a whole Scan of the benchmark record compared with a byte loop; the byte loop
// only handles the last few bytes of the input.
func scanString(data []byte, i int) (int, bool, error) {
	n := len(data)
	esc := false
	for {
		if i+8 <= n {
			m := special8(binary.LittleEndian.Uint64(data[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else {
			for i < n && plain[data[i]] {
				i++
			}
			if i >= n {
				return 0, false, errEOF(data)
			}
		}
		switch c := data[i]; c {
		case '"':
			return i, esc, nil
		case '\\':
			esc = true
			if i+1 >= n {
				return 0, false, errEOF(data)
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if err := checkHex4(data, i+2); err != nil {
					return 0, false, err
				}
				// A surrogate must be the high half of a pair whose low half follows at once:
				// anything else would decode to U+FFFD, text the producer never wrote.
				if r := hex4(data[i+2:]); r >= 0xd800 && r < 0xe000 {
					if r >= 0xdc00 {
						return 0, false, errLoneSurrogate(i)
					}
					if i+6 >= n || (data[i+6] == '\\' && i+7 >= n) {
						return 0, false, errEOF(data)
					}
					if data[i+6] == '\\' && data[i+7] == 'u' {
						if err := checkHex4(data, i+8); err != nil {
							return 0, false, err
						}
						if r2 := hex4(data[i+8:]); r2 >= 0xdc00 && r2 < 0xe000 {
							i += 12
							continue
						}
					}
					return 0, false, errLoneSurrogate(i)
				}
				i += 6
			default:
				return 0, false, errAt(data, i+1, "in string escape code")
			}
		default: // a control character
			return 0, false, errAt(data, i, "in string literal")
		}
	}
}

// checkHex4 checks the 4 hex digits of a \u escape at data[k:].
func checkHex4(data []byte, k int) error {
	for end := k + 4; k < end; k++ {
		if k >= len(data) {
			return errEOF(data)
		}
		if unhex(data[k]) < 0 {
			return errAt(data, k, `in \u hexadecimal character escape`)
		}
	}
	return nil
}

// unhex returns the value of a hexadecimal digit, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// hex4 decodes the 4 hex digits of a \u escape that scanString has already validated.
func hex4(b []byte) rune {
	_ = b[3]
	return rune(unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3]))
}

// appendUnescaped appends the decoded contents of a string that scanString has validated (src is the
// text between the quotes). Escapes are decoded exactly as encoding/json does: a surrogate pair
// becomes one rune (scanString has refused lone surrogates; were one passed here, it would become
// U+FFFD, as in encoding/json). All other bytes, including invalid UTF-8, are copied unchanged.
func appendUnescaped(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		j := bytes.IndexByte(src[i:], '\\')
		if j < 0 {
			return append(dst, src[i:]...)
		}
		dst = append(dst, src[i:i+j]...)
		i += j
		switch c := src[i+1]; c {
		case 'u':
			r := hex4(src[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r1 := rune(-1)
				if i+6 <= len(src) && src[i] == '\\' && src[i+1] == 'u' {
					r1 = hex4(src[i+2:])
				}
				if dec := utf16.DecodeRune(r, r1); dec != utf8.RuneError {
					dst = utf8.AppendRune(dst, dec)
					i += 6
					continue
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		case 'b':
			dst = append(dst, '\b')
			i += 2
		case 'f':
			dst = append(dst, '\f')
			i += 2
		case 'n':
			dst = append(dst, '\n')
			i += 2
		case 'r':
			dst = append(dst, '\r')
			i += 2
		case 't':
			dst = append(dst, '\t')
			i += 2
		default: // '"', '\\', '/'
			dst = append(dst, c)
			i += 2
		}
	}
	return dst
}

// safe marks the ASCII bytes AppendString copies as they are.
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string literal (with quotes) to dst and returns the extended slice.
// The output is byte for byte what encoding/json writes for the same string with HTML escaping off
// (json.Encoder.SetEscapeHTML(false)): '"' and '\\' are backslash-escaped; \b, \f, \n, \r and \t use
// their short escapes and other control characters \u00XX; each byte that is not part of valid UTF-8
// becomes \ufffd; U+2028 and U+2029 are escaped because JavaScript does not allow them unescaped in
// string literals; everything else, including valid multi-byte UTF-8, is copied.
func AppendString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

package ubjson

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// realModel is an XGBoost model saved as UBJSON by xgboost itself (the gbdt fixtures).
func realModel(t testing.TB) []byte {
	t.Helper()
	f, err := os.Open("../../gbdt/testdata/models/xgb_binary_ubj.ubj.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func be16(v int16) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
func f32(v float32) []byte {
	return binary.BigEndian.AppendUint32(nil, math.Float32bits(v))
}
func f64(v float64) []byte {
	return binary.BigEndian.AppendUint64(nil, math.Float64bits(v))
}
func cat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			b = append(b, p...)
		case []byte:
			b = append(b, p...)
		case byte:
			b = append(b, p)
		default:
			panic("cat: bad part")
		}
	}
	return b
}

func TestToJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"null", cat("Z"), `null`},
		{"bools", cat("[TF]"), `[true,false]`},
		{"ints", cat("[i", byte(0xff), "U", byte(200), "I", be16(-300), "l", be32(-70000), "L", be64(math.MinInt64), "]"),
			`[-1,200,-300,-70000,-9223372036854775808]`},
		{"float32 shortest", cat("d", f32(0.1)), `0.1`},
		{"float64 shortest", cat("D", f64(0.1)), `0.1`},
		{"float32 exponent", cat("d", f32(1.5e-7)), `1.5e-07`},
		{"high precision", cat("HU", byte(5), "1.5e9"), `1.5e9`},
		{"char", cat("C", "x"), `"x"`},
		{"string escapes", cat("SU", byte(5), "a\"\\\n\x01"), `"a\"\\\u000a\u0001"`},
		{"utf8 string", cat("SU", byte(3), "é!"), `"é!"`},
		{"empty containers", cat("[[]{}]"), `[[],{}]`},
		{"object", cat("{U", byte(1), "aU", byte(7), "U", byte(1), "bSU", byte(1), "c}"), `{"a":7,"b":"c"}`},
		{"no-ops skipped", cat("N[NU", byte(1), "NU", byte(2), "N]N"), `[1,2]`},
		{"no-op before key", cat("{NU", byte(1), "aTN}"), `{"a":true}`},
		{"counted array", cat("[#U", byte(2), "U", byte(1), "SU", byte(1), "x"), `[1,"x"]`},
		{"typed array", cat("[$d#U", byte(2), f32(1.5), f32(-2)), `[1.5,-2]`},
		{"typed int64 array", cat("[$L#i", byte(1), be64(1<<40)), `[1099511627776]`},
		{"typed null array", cat("[$Z#U", byte(3)), `[null,null,null]`},
		{"typed object", cat("{$U#U", byte(2), "U", byte(1), "a", byte(1), "U", byte(1), "b", byte(2)), `{"a":1,"b":2}`},
		{"counted object", cat("{#U", byte(1), "U", byte(1), "kF"), `{"k":false}`},
		{"typed array of arrays", cat("[$[#U", byte(2), "]", "U", byte(1), "]"), `[[],[1]]`},
		{"empty key", cat("{U", byte(0), "Z}"), `{"":null}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ToJSON(nil, tc.in, Limits{})
			if err != nil {
				t.Fatalf("ToJSON: %v", err)
			}
			if string(out) != tc.want {
				t.Fatalf("got %s, want %s", out, tc.want)
			}
			if !json.Valid(out) {
				t.Fatalf("output is not valid JSON: %s", out)
			}
		})
	}
}

func TestToJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		lim  Limits
		want string // substring of the error, or "" for a sentinel
		is   error
	}{
		{"empty", nil, Limits{}, "unexpected end of input", nil},
		{"only no-ops", cat("NNN"), Limits{}, "unexpected end of input", nil},
		{"unknown marker", cat("x"), Limits{}, `unknown type marker 'x' at offset 0`, nil},
		{"truncated int", cat("l", byte(1), byte(2)), Limits{}, "unexpected end of input", nil},
		{"truncated float", cat("D", byte(1)), Limits{}, "unexpected end of input", nil},
		{"trailing", cat("TT"), Limits{}, "trailing bytes", nil},
		{"nan", cat("d", f32(float32(math.NaN()))), Limits{}, "non-finite", nil},
		{"inf", cat("D", f64(math.Inf(-1))), Limits{}, "non-finite", nil},
		{"negative length", cat("Si", byte(0xff)), Limits{}, "negative length -1", nil},
		{"length past input", cat("SU", byte(10), "abc"), Limits{}, "length 10 exceeds the 3 bytes left", nil},
		{"length not an integer", cat("Sd", f32(1)), Limits{}, "want an integer type", nil},
		{"invalid utf8", cat("SU", byte(2), "\xff\xfe"), Limits{}, "not valid UTF-8", nil},
		{"non-ascii char", cat("C", byte(0xe9)), Limits{}, "not ASCII", nil},
		{"bad high precision", cat("HU", byte(3), "1.e"), Limits{}, "not a JSON number", nil},
		{"unclosed array", cat("[TT"), Limits{}, "unexpected end of input", nil},
		{"unclosed object", cat("{U", byte(1), "aT"), Limits{}, "unexpected end of input", nil},
		{"object key with marker", cat("{SU", byte(1), "aT}"), Limits{}, "want an integer type", nil},
		{"typed without count", cat("[$U", byte(1), byte(2), "]"), Limits{}, "typed container needs a count", nil},
		{"bad container type", cat("[$N#U", byte(1)), Limits{}, "invalid container type 'N'", nil},
		{"huge count", cat("[$d#L", be64(1<<60)), Limits{}, "exceeds the 0 bytes left", nil},
		{"huge untyped count", cat("[#l", be32(1000), "T"), Limits{}, "exceeds the 1 bytes left", nil},
		{"count of nulls past output limit", cat("[$Z#l", be32(1<<30)), Limits{MaxOutput: 1 << 20}, "", ErrTooLarge},
		{"too deep", []byte(strings.Repeat("[", 10) + strings.Repeat("]", 10)), Limits{MaxDepth: 9}, "", ErrTooDeep},
		{"output limit", cat("SU", byte(10), "0123456789"), Limits{MaxOutput: 5}, "", ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ToJSON(nil, tc.in, tc.lim)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil {
				if !errors.Is(err, tc.is) {
					t.Fatalf("got %v, want %v", err, tc.is)
				}
				return
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("got %T %v, want a *SyntaxError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestDepthLimitExact: MaxDepth levels are accepted, one more is not.
func TestDepthLimitExact(t *testing.T) {
	ok := []byte(strings.Repeat("[", DefaultMaxDepth) + strings.Repeat("]", DefaultMaxDepth))
	if _, err := ToJSON(nil, ok, Limits{}); err != nil {
		t.Fatalf("depth %d: %v", DefaultMaxDepth, err)
	}
	deep := append([]byte{'['}, append(ok, ']')...)
	if _, err := ToJSON(nil, deep, Limits{}); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("depth %d: got %v, want ErrTooDeep", DefaultMaxDepth+1, err)
	}
}

// TestRealModel: a model xgboost wrote transcodes to JSON that encoding/json accepts, with the
// fields gbdt reads.
func TestRealModel(t *testing.T) {
	out, err := ToJSON(nil, realModel(t), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Learner struct {
			Param struct {
				BaseScore string `json:"base_score"`
			} `json:"learner_model_param"`
			Booster struct {
				Model struct {
					Trees []struct {
						SplitConditions []float32 `json:"split_conditions"`
					} `json:"trees"`
				} `json:"model"`
			} `json:"gradient_booster"`
		} `json:"learner"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if m.Learner.Param.BaseScore == "" || len(m.Learner.Booster.Model.Trees) == 0 ||
		len(m.Learner.Booster.Model.Trees[0].SplitConditions) == 0 {
		t.Fatalf("fields missing after transcoding: %+v", m)
	}
}

// A random document, encoded by the test's own encoder in a random choice of the UBJSON forms,
// must transcode to exactly the JSON text that the same document prints as.
func TestRandomDocuments(t *testing.T) {
	seed := uint64(rand.Int64())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 15))
	for i := 0; i < 2000; i++ {
		var ub, js []byte
		randomValue(rng, 0, &ub, &js)
		out, err := ToJSON(nil, ub, Limits{})
		if err != nil {
			t.Fatalf("seed %d doc %d: %v\nubjson %q", seed, i, err, ub)
		}
		if !bytes.Equal(out, js) {
			t.Fatalf("seed %d doc %d:\n got %s\nwant %s", seed, i, out, js)
		}
	}
}

func lengthPrefix(rng *rand.Rand, n int) []byte {
	switch {
	case n <= 127 && rng.IntN(2) == 0:
		return []byte{'i', byte(n)}
	case n <= 255 && rng.IntN(2) == 0:
		return []byte{'U', byte(n)}
	case n <= 32767 && rng.IntN(2) == 0:
		return append([]byte{'I'}, be16(int16(n))...)
	case rng.IntN(2) == 0:
		return append([]byte{'l'}, be32(int32(n))...)
	}
	return append([]byte{'L'}, be64(int64(n))...)
}

func randomString(rng *rand.Rand) string {
	const alphabet = "ab\"\\\x01\n é€"
	var sb strings.Builder
	for n := rng.IntN(6); n > 0; n-- {
		r := []rune(alphabet)
		sb.WriteRune(r[rng.IntN(len(r))])
	}
	return sb.String()
}

func jsonString(s string) []byte {
	out, err := ToJSON(nil, append([]byte{'S', 'U', byte(len(s))}, s...), Limits{})
	if err != nil {
		panic(err)
	}
	return out
}

// randomValue appends one random value to ub (UBJSON, with its marker) and js (its JSON text).
func randomValue(rng *rand.Rand, depth int, ub, js *[]byte) {
	kind := rng.IntN(12)
	if depth > 3 && kind >= 10 {
		kind = rng.IntN(10)
	}
	switch kind {
	case 0:
		*ub, *js = append(*ub, 'Z'), append(*js, "null"...)
	case 1:
		*ub, *js = append(*ub, 'T'), append(*js, "true"...)
	case 2:
		*ub, *js = append(*ub, 'F'), append(*js, "false"...)
	case 3, 4:
		v := rng.Int64() >> rng.IntN(64)
		if rng.IntN(2) == 0 {
			v = -v
		}
		var enc []byte
		switch {
		case v >= -128 && v <= 127:
			enc = []byte{'i', byte(int8(v))}
		case v >= 0 && v <= 255:
			enc = []byte{'U', byte(v)}
		case v >= math.MinInt16 && v <= math.MaxInt16:
			enc = append([]byte{'I'}, be16(int16(v))...)
		case v >= math.MinInt32 && v <= math.MaxInt32:
			enc = append([]byte{'l'}, be32(int32(v))...)
		default:
			enc = append([]byte{'L'}, be64(v)...)
		}
		*ub, *js = append(*ub, enc...), strconv.AppendInt(*js, v, 10)
	case 5:
		v := float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(20)-10)))
		*ub = append(append(*ub, 'd'), f32(v)...)
		*js = strconv.AppendFloat(*js, float64(v), 'g', -1, 32)
	case 6:
		v := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
		*ub = append(append(*ub, 'D'), f64(v)...)
		*js = strconv.AppendFloat(*js, v, 'g', -1, 64)
	case 7:
		s := randomString(rng)
		*ub = append(append(append(*ub, 'S'), lengthPrefix(rng, len(s))...), s...)
		*js = append(*js, jsonString(s)...)
	case 8:
		c := byte('a' + rng.IntN(26))
		*ub, *js = append(*ub, 'C', c), append(*js, '"', c, '"')
	case 9:
		s := strconv.FormatFloat(rng.NormFloat64()*1e30, 'e', -1, 64)
		*ub = append(append(append(*ub, 'H'), lengthPrefix(rng, len(s))...), s...)
		*js = append(*js, s...)
	case 10:
		randomArray(rng, depth, ub, js)
	case 11:
		randomObject(rng, depth, ub, js)
	}
	if rng.IntN(20) == 0 {
		*ub = append(*ub, 'N') // a no-op after a value is skipped
	}
}

func randomArray(rng *rand.Rand, depth int, ub, js *[]byte) {
	n := rng.IntN(5)
	*js = append(*js, '[')
	switch rng.IntN(3) {
	case 0: // closed by ']'
		*ub = append(*ub, '[')
		for i := 0; i < n; i++ {
			if i > 0 {
				*js = append(*js, ',')
			}
			randomValue(rng, depth+1, ub, js)
		}
		*ub = append(*ub, ']')
	case 1: // counted
		*ub = append(append(*ub, '[', '#'), lengthPrefix(rng, n)...)
		for i := 0; i < n; i++ {
			if i > 0 {
				*js = append(*js, ',')
			}
			randomValue(rng, depth+1, ub, js)
		}
	case 2: // typed: float32 elements, no markers
		*ub = append(append(*ub, '[', '$', 'd', '#'), lengthPrefix(rng, n)...)
		for i := 0; i < n; i++ {
			if i > 0 {
				*js = append(*js, ',')
			}
			v := float32(rng.NormFloat64())
			*ub = append(*ub, f32(v)...)
			*js = strconv.AppendFloat(*js, float64(v), 'g', -1, 32)
		}
	}
	*js = append(*js, ']')
}

func randomObject(rng *rand.Rand, depth int, ub, js *[]byte) {
	n := rng.IntN(4)
	counted := rng.IntN(2) == 0
	*js = append(*js, '{')
	*ub = append(*ub, '{')
	if counted {
		*ub = append(append(*ub, '#'), lengthPrefix(rng, n)...)
	}
	for i := 0; i < n; i++ {
		if i > 0 {
			*js = append(*js, ',')
		}
		k := randomString(rng)
		*ub = append(append(*ub, lengthPrefix(rng, len(k))...), k...)
		*js = append(append(*js, jsonString(k)...), ':')
		randomValue(rng, depth+1, ub, js)
	}
	if !counted {
		*ub = append(*ub, '}')
	}
	*js = append(*js, '}')
}

// FuzzToJSON: any input gives JSON that encoding/json accepts, within the output limit, or an
// error; never a panic.
func FuzzToJSON(f *testing.F) {
	f.Add(realModel(f))
	for _, s := range [][]byte{
		cat("[$d#U", byte(2), f32(1.5), f32(-2)),
		cat("{U", byte(1), "aU", byte(7), "U", byte(1), "bSU", byte(1), "c}"),
		cat("{$U#U", byte(2), "U", byte(1), "a", byte(1), "U", byte(1), "b", byte(2)),
		cat("[$[#U", byte(2), "]", "U", byte(1), "]"),
		cat("[$Z#l", be32(1<<20)),
		cat("HU", byte(5), "1.5e9"),
		cat("N[NU", byte(1), "NU", byte(2), "N]N"),
	} {
		f.Add(s)
	}
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ToJSON(nil, data, Limits{MaxOutput: limit})
		if err != nil {
			return
		}
		if len(out) > limit {
			t.Fatalf("output %d bytes over the %d limit", len(out), limit)
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON output %q for input %q", out, data)
		}
	})
}

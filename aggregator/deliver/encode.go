package deliver

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/sluicelog/sluice/parser"
)

// AppendDocument appends doc to buf as a JSON object, as encoding/json
// would write it except that keys are in the document's order (nested
// objects: map order), not sorted, and without HTML escaping
// (Elasticsearch needs neither), but several times faster: documents hold
// only the types the parsers and enrichers produce, and those are written
// without reflection. Other types fall back to encoding/json. Invalid UTF-8
// is replaced by U+FFFD; NaN and infinities are an error, as in
// encoding/json.
func AppendDocument(buf []byte, doc *parser.Doc) ([]byte, error) {
	buf = append(buf, '{')
	fields := doc.Fields()
	for i := range fields {
		f := &fields[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		if f.PlainKey() { // most keys: no need to look for escapes
			buf = append(buf, '"')
			buf = append(buf, f.Key...)
			buf = append(buf, '"', ':')
		} else {
			buf = appendString(buf, f.Key)
			buf = append(buf, ':')
		}
		var err error
		if buf, err = appendValue(buf, f.Value); err != nil {
			return buf, fmt.Errorf("field %s: %w", f.Key, err)
		}
	}
	return append(buf, '}'), nil
}

func appendObject(buf []byte, m map[string]any) ([]byte, error) {
	if len(m) == 2 {
		// A geo point, in every nginx document with GeoIP: two lookups
		// are much cheaper than walking a map.
		if lat, ok := m["lat"]; ok {
			if lon, ok := m["lon"]; ok {
				return appendPoint(buf, lat, lon)
			}
		}
	}
	buf = append(buf, '{')
	first := true
	for k, v := range m {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = appendString(buf, k)
		buf = append(buf, ':')
		var err error
		if buf, err = appendValue(buf, v); err != nil {
			return buf, fmt.Errorf("field %s: %w", k, err)
		}
	}
	return append(buf, '}'), nil
}

// appendPoint writes {"lat":lat,"lon":lon}.
func appendPoint(buf []byte, lat, lon any) ([]byte, error) {
	buf = append(buf, `{"lat":`...)
	var err error
	if buf, err = appendValue(buf, lat); err != nil {
		return buf, fmt.Errorf("field lat: %w", err)
	}
	buf = append(buf, `,"lon":`...)
	if buf, err = appendValue(buf, lon); err != nil {
		return buf, fmt.Errorf("field lon: %w", err)
	}
	return append(buf, '}'), nil
}

func appendValue(buf []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return appendString(buf, v), nil
	case int64:
		return strconv.AppendInt(buf, v, 10), nil
	case int:
		return strconv.AppendInt(buf, int64(v), 10), nil
	case float64:
		return appendFloat(buf, v)
	case bool:
		return strconv.AppendBool(buf, v), nil
	case nil:
		return append(buf, "null"...), nil
	case []string:
		buf = append(buf, '[')
		for i, s := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, s)
		}
		return append(buf, ']'), nil
	case []float64:
		buf = append(buf, '[')
		for i, f := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = appendFloat(buf, f); err != nil {
				return buf, err
			}
		}
		return append(buf, ']'), nil
	case []any:
		buf = append(buf, '[')
		for i, e := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = appendValue(buf, e); err != nil {
				return buf, err
			}
		}
		return append(buf, ']'), nil
	case map[string]any:
		return appendObject(buf, v)
	default:
		b, err := json.Marshal(v)
		return append(buf, b...), err
	}
}

// appendFloat writes f as encoding/json does.
func appendFloat(buf []byte, f float64) ([]byte, error) {
	if b, ok := appendDecimal(buf, f); ok {
		return b, nil
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return buf, fmt.Errorf("unsupported value %v", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	buf = strconv.AppendFloat(buf, f, format, -1, 64)
	if format == 'e' { // 1e-07 -> 1e-7
		if n := len(buf); n >= 4 && buf[n-4] == 'e' && buf[n-3] == '-' && buf[n-2] == '0' {
			buf[n-2] = buf[n-1]
			buf = buf[:n-1]
		}
	}
	return buf, nil
}

// Numbers appendDecimal writes: n/decimalScale for an integer n, below
// maxDecimal, where a float64's spacing (at most 2^-23) is well under
// 1/decimalScale.
const (
	decimalDigits = 6
	decimalScale  = 1e6
	maxDecimal    = 1e9
)

// appendDecimal writes f as encoding/json does if f is n/1e6 for an
// integer n, as nginx's times (0.123), coordinates (51.5142) and most
// measured values are, without strconv's search for the shortest
// representation: the decimal n/1e6, trailing zeros dropped, is that
// shortest representation, since f is the float64 nearest to it and no
// other decimal of as few digits is within f's spacing. ok is false for
// other numbers, 0 (which may be -0) and numbers of maxDecimal or more.
func appendDecimal(buf []byte, f float64) ([]byte, bool) {
	if !(f > -maxDecimal && f < maxDecimal) || f == 0 {
		return buf, false
	}
	n := math.Round(f * decimalScale)
	if n/decimalScale != f { // n/1e6 is the float64 nearest to the decimal n/1e6
		return buf, false
	}
	m := int64(n)
	if m < 0 {
		buf = append(buf, '-')
		m = -m
	}
	buf = strconv.AppendInt(buf, m/decimalScale, 10)
	frac := m % decimalScale
	if frac == 0 {
		return buf, true
	}
	var digits [1 + decimalDigits]byte
	digits[0] = '.'
	for i := decimalDigits; i > 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	end := len(digits)
	for digits[end-1] == '0' {
		end--
	}
	return append(buf, digits[:end]...), true
}

const hexDigits = "0123456789abcdef"

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasZeroByte reports whether any byte of x is 0.
func hasZeroByte(x uint64) bool { return (x-ones)&^x&highs != 0 }

// plainWord reports whether the eight bytes in x are all plain: ASCII, not
// a control character, a quote or a backslash.
func plainWord(x uint64) bool {
	return x&highs == 0 && // ASCII
		(x-0x20*ones)&highs == 0 && // no byte below 0x20 (no borrow, as all are < 0x80)
		!hasZeroByte(x^('"'*ones)) &&
		!hasZeroByte(x^('\\'*ones))
}

// plain holds the bytes a JSON string holds as they are: printable ASCII
// other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString writes s as a JSON string.
func appendString(buf []byte, s string) []byte {
	// Most strings are plain throughout: checked eight bytes at a time,
	// the tail as the last eight bytes when there are that many, and
	// copied whole.
	i := 0
	for i+8 <= len(s) && plainWord(binary.LittleEndian.Uint64([]byte(s[i:i+8]))) {
		i += 8
	}
	if i < len(s) && i+8 > len(s) {
		if len(s) >= 8 && plainWord(binary.LittleEndian.Uint64([]byte(s[len(s)-8:]))) {
			i = len(s)
		}
		for i < len(s) && plain[s[i]] {
			i++
		}
	}
	if i == len(s) {
		buf = append(buf, '"')
		buf = append(buf, s...)
		return append(buf, '"')
	}
	return appendEscaped(buf, s, i)
}

// appendEscaped writes s as a JSON string; its first i bytes are plain.
func appendEscaped(buf []byte, s string, i int) []byte {
	buf = append(buf, '"')
	start := 0
	for i < len(s) {
		// Eight plain bytes at a time: the common case.
		for i+8 <= len(s) && plainWord(binary.LittleEndian.Uint64([]byte(s[i:i+8]))) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				buf = append(buf, s[start:i]...)
				buf = append(buf, `\ufffd`...)
			case r == '\u2028' || r == '\u2029': // valid JSON, but not valid JavaScript
				buf = append(buf, s[start:i]...)
				buf = append(buf, `\u202`...)
				buf = append(buf, hexDigits[r&0xf])
			default:
				i += size
				continue
			}
			i += size
			start = i
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		case '\b':
			buf = append(buf, '\\', 'b')
		case '\f':
			buf = append(buf, '\\', 'f')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

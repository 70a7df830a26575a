package parser

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is the deepest nesting of objects and arrays encoding/json
// accepts; jsonReader accepts the same.
const maxDepth = 10000

// jsonReader decodes one JSON object while checking its syntax, in one
// pass. Strings without escapes are slices of the text. After a syntax
// error it reads nothing more and bad is set; finish reports it.
type jsonReader struct {
	s     string
	i     int // read position
	depth int
	valid bool // s is valid UTF-8: its slices need no repair
	bad   bool // s is not JSON
}

// objectReader returns a reader at the opening brace of line, or an error
// if line does not start with one.
func objectReader(line []byte) (jsonReader, error) {
	s := string(line)
	r := jsonReader{s: s, valid: utf8.ValidString(s)}
	r.space()
	if c := r.next(); c != '{' {
		if json.Valid(line) {
			return r, fmt.Errorf("%w: %s", ErrNotObject, jsonKind(c))
		}
		return r, notJSON(line)
	}
	return r, nil
}

// finish checks that nothing but space follows the object read.
func (r *jsonReader) finish(line []byte) error {
	r.space()
	if r.bad || r.i != len(r.s) {
		return notJSON(line)
	}
	return nil
}

// notJSON is the error for a line that is not JSON, with encoding/json's
// description of what is wrong.
func notJSON(line []byte) error {
	var raw json.RawMessage
	return fmt.Errorf("%w: %v", ErrNotJSON, json.Unmarshal(line, &raw))
}

func jsonKind(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// next is the byte at the read position, 0 at the end.
func (r *jsonReader) next() byte {
	if r.i < len(r.s) {
		return r.s[r.i]
	}
	return 0
}

func (r *jsonReader) fail() {
	r.bad = true
	r.i = len(r.s)
}

func (r *jsonReader) space() {
	for r.i < len(r.s) {
		switch r.s[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// enter reads the opening brace or bracket of a nested value.
func (r *jsonReader) enter() bool {
	r.depth++
	if r.depth > maxDepth {
		r.fail()
		return false
	}
	r.i++
	r.space()
	return true
}

// leave reads the closing brace or bracket, or a comma, after a member or
// element, and says whether it was the closing one.
func (r *jsonReader) leave(closing byte) bool {
	r.space()
	switch r.next() {
	case ',':
		r.i++
		r.space()
		return false
	case closing:
		r.i++
		r.depth--
		return true
	}
	r.fail()
	return true
}

// members reads the object at the read position, calling each with every
// member's name while the reader is at the member's value; each must read
// the value (value, scalar or literal).
func (r *jsonReader) members(each func(name string)) {
	if !r.enter() {
		return
	}
	if r.next() == '}' {
		r.i++
		r.depth--
		return
	}
	for {
		if r.next() != '"' {
			r.fail()
			return
		}
		name := r.str()
		r.space()
		if r.next() != ':' {
			r.fail()
			return
		}
		r.i++
		r.space()
		each(name)
		if r.leave('}') {
			return
		}
	}
}

// value reads any value: string, int64, float64, bool, nil,
// map[string]any or []any.
func (r *jsonReader) value() any {
	switch r.next() {
	case '"':
		return r.str()
	case '{':
		m := map[string]any{}
		r.members(func(name string) { m[name] = r.value() })
		return m
	case '[':
		return r.array()
	case 't':
		r.literal("true")
		return true
	case 'f':
		r.literal("false")
		return false
	case 'n':
		r.literal("null")
		return nil
	}
	return number(r.number())
}

// scalar reads a string as its decoded text, and a number, true or false
// as written.
func (r *jsonReader) scalar() string {
	switch r.next() {
	case '"':
		return r.str()
	case 't':
		return r.literal("true")
	case 'f':
		return r.literal("false")
	}
	return r.number()
}

// literal reads the literal lit: true, false or null.
func (r *jsonReader) literal(lit string) string {
	if !strings.HasPrefix(r.s[r.i:], lit) {
		r.fail()
		return ""
	}
	r.i += len(lit)
	return lit
}

func (r *jsonReader) array() []any {
	a := []any{}
	if !r.enter() {
		return a
	}
	if r.next() == ']' {
		r.i++
		r.depth--
		return a
	}
	for {
		a = append(a, r.value())
		if r.leave(']') {
			return a
		}
	}
}

// number reads a number as written.
func (r *jsonReader) number() string {
	start := r.i
	if r.next() == '-' {
		r.i++
	}
	switch c := r.next(); {
	case c == '0':
		r.i++
	case '1' <= c && c <= '9':
		r.digits()
	default:
		r.fail()
		return ""
	}
	if r.next() == '.' {
		r.i++
		if !r.digits() {
			return ""
		}
	}
	if c := r.next(); c == 'e' || c == 'E' {
		r.i++
		if c := r.next(); c == '+' || c == '-' {
			r.i++
		}
		if !r.digits() {
			return ""
		}
	}
	return r.s[start:r.i]
}

// digits reads one or more decimal digits.
func (r *jsonReader) digits() bool {
	start := r.i
	for r.i < len(r.s) && '0' <= r.s[r.i] && r.s[r.i] <= '9' {
		r.i++
	}
	if r.i == start {
		r.fail()
		return false
	}
	return true
}

// number converts a JSON number: int64 if it is written as an integer that
// fits, else float64, else (out of float64's range) the text.
func number(tok string) any {
	if strings.IndexAny(tok, ".eE") < 0 {
		if n, err := strconv.ParseInt(tok, 10, 64); err == nil {
			return n
		}
	}
	f, _ := strconv.ParseFloat(tok, 64) // JSON numbers are valid floats
	if math.IsInf(f, 0) {
		return tok
	}
	return f
}

// str reads the string at the read position.
func (r *jsonReader) str() string {
	start := r.i + 1
	for i := start; i < len(r.s); i++ {
		switch c := r.s[i]; {
		case c == '"':
			r.i = i + 1
			if r.valid {
				return r.s[start:i]
			}
			return validUTF8(r.s[start:i])
		case c == '\\':
			return r.unquote(start)
		case c < 0x20:
			r.fail()
			return ""
		}
	}
	r.fail()
	return ""
}

// unquote decodes a string with escapes that starts at start, the way
// encoding/json does: an unpaired surrogate becomes U+FFFD.
func (r *jsonReader) unquote(start int) string {
	b := make([]byte, 0, 64)
	for i := start; i < len(r.s); {
		c := r.s[i]
		switch {
		case c == '"':
			r.i = i + 1
			return validUTF8(string(b))
		case c < 0x20:
			r.fail()
			return ""
		case c != '\\':
			b = append(b, c)
			i++
			continue
		}
		if i+1 == len(r.s) {
			break
		}
		switch e := r.s[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			u, n := escapedRune(r.s[i:])
			if n == 0 {
				r.fail()
				return ""
			}
			b = utf8.AppendRune(b, u)
			i += n
			continue
		default:
			r.fail()
			return ""
		}
		i += 2
	}
	r.fail()
	return ""
}

// escapedRune decodes the \uXXXX at the start of s, with the \uXXXX after
// it if the two are a surrogate pair, and returns their length; 0 if s
// does not start with \u and four hex digits.
func escapedRune(s string) (rune, int) {
	u, ok := hex4(s)
	if !ok {
		return 0, 0
	}
	if !utf16.IsSurrogate(u) {
		return u, 6
	}
	if low, ok := hex4(s[6:]); ok {
		if pair := utf16.DecodeRune(u, low); pair != utf8.RuneError {
			return pair, 12
		}
	}
	return utf8.RuneError, 6
}

// hex4 reads the rune of "\uXXXX" at the start of s.
func hex4(s string) (rune, bool) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, false
	}
	var u rune
	for _, c := range []byte(s[2:6]) {
		d := unhex(c)
		if d > 15 {
			return 0, false
		}
		u = u<<4 | rune(d)
	}
	return u, true
}

// unhex is the value of hex digit c, or 0xff if c is not one.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}

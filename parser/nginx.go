package parser

import (
	"fmt"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// nginx log_format strings Sluice knows by name.
const (
	FormatCombined     = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`
	DefaultNginxFormat = FormatCombined + ` $request_time $upstream_response_time "$http_x_forwarded_for"`
	// FormatTraced adds what ties an access line to the services' lines
	// and every upstream attempt to DefaultNginxFormat: the README's
	// log_format for nginx in front of services.
	FormatTraced = DefaultNginxFormat + ` $request_id "$http_x_request_id" "$http_traceparent"` +
		` "$upstream_addr" "$upstream_status" "$upstream_connect_time" $host`
	// FormatMain is the "main" format of the nginx.conf that nginx and most
	// distributions ship.
	FormatMain = FormatCombined + ` "$http_x_forwarded_for"`
)

// nginxFormats are the formats known by name.
var nginxFormats = map[string]string{
	"combined": FormatCombined,
	"main":     FormatMain,
	"sluice":   DefaultNginxFormat,
	"traced":   FormatTraced,
}

// NginxFormatNames are the names NginxFormat knows, in the order to show
// them.
var NginxFormatNames = []string{"combined", "main", "sluice", "traced"}

// NginxFormat returns the log_format of the format named name (one of
// NginxFormatNames), and whether it is one; a log_format string is not.
func NginxFormat(name string) (string, bool) {
	f, ok := nginxFormats[name]
	return f, ok
}

// Nginx parses the access log lines of one nginx log_format. It is safe for
// concurrent use.
type Nginx struct {
	lead string // literal text before the first variable
	vars []nginxVar
	// members maps the member names of a JSON log_format to the fields of
	// the variables that are their values.
	members map[string]field

	// Routes derives http.route from the request's path; nil uses the
	// built-in id patterns only. Set it before the first Parse.
	Routes *Routes

	// lastTime is the last time value read (see setTime).
	lastTime atomic.Pointer[stamp]
}

// nginxVar is a variable and the literal text that follows it, up to the
// next variable or the end of the format.
type nginxVar struct {
	name  string
	field field
	after string
}

// CompileNginx compiles an nginx log_format string: $name or ${name}
// variables with literal text between them. Two variables must not follow
// each other without text between them, which would leave the line with
// nowhere to be split.
func CompileNginx(format string) (*Nginx, error) {
	i := strings.IndexByte(format, '$')
	if i < 0 {
		return nil, fmt.Errorf("log_format %q has no $variables", format)
	}
	p := &Nginx{lead: format[:i]}
	rest := format[i:]
	for rest != "" {
		name, n := varName(rest)
		if name == "" {
			return nil, fmt.Errorf("log_format: bad variable at %q", clip(rest))
		}
		rest = rest[n:]
		j := strings.IndexByte(rest, '$')
		if j < 0 {
			j = len(rest)
		}
		if j == 0 && rest != "" {
			return nil, fmt.Errorf("log_format: $%s is followed by another variable with no text between them", name)
		}
		p.vars = append(p.vars, nginxVar{name: name, field: nginxField(name), after: rest[:j]})
		rest = rest[j:]
	}
	if strings.HasPrefix(strings.TrimLeft(format, " \t"), "{") {
		p.members = p.jsonMembers()
	}
	return p, nil
}

// varName reads "$name" or "${name}" at the start of s and returns the name
// and the length read, or "" if there is no variable name.
func varName(s string) (string, int) {
	if strings.HasPrefix(s, "${") {
		end := strings.IndexByte(s, '}')
		if end < 0 || !isVarName(s[2:end]) {
			return "", 0
		}
		return s[2:end], end + 1
	}
	n := 1
	for n < len(s) && isVarByte(s[n]) {
		n++
	}
	return s[1:n], n
}

func isVarName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isVarByte(s[i]) {
			return false
		}
	}
	return s != ""
}

func isVarByte(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// Parse parses one access log line into doc; see the package documentation
// for the fields. A line that starts with '{' is read as an escape=json
// line; if it is not JSON, the error wraps ErrNotJSON. Otherwise errors wrap
// ErrNoMatch and say where the line does not fit the format or which value
// cannot be read.
func (p *Nginx) Parse(line []byte, doc *Doc) error {
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	if len(line) > 0 && line[0] == '{' {
		return p.parseJSON(line, doc)
	}
	return p.parseText(string(line), doc)
}

// ParseString is Parse for a line held in a string. The document's values
// may be parts of line, which saves copying it: the aggregator parses
// Kafka records' values in place, as they never change.
func (p *Nginx) ParseString(line string, doc *Doc) error {
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	if len(line) > 0 && line[0] == '{' {
		return p.parseJSON([]byte(line), doc)
	}
	return p.parseText(line, doc)
}

// parseText parses a line of the log_format, without its line end.
func (p *Nginx) parseText(s string, doc *Doc) error {
	if !strings.HasPrefix(s, p.lead) {
		return fmt.Errorf("%w: expected %q at the start", ErrNoMatch, p.lead)
	}
	valid := utf8.ValidString(s)
	// Values are taken as they are unless the line has escapes or invalid
	// UTF-8, which most lines do not.
	plain := valid && !strings.Contains(s, `\x`)
	pos := len(p.lead)
	last := len(p.vars) - 1
	var st nginxLine
	for i, v := range p.vars {
		end, next, err := v.end(s, pos, i == last)
		if err != nil {
			return err
		}
		if val := s[pos:end]; val != "" && val != "-" {
			if !plain {
				val = nginxValue(val, valid)
			}
			if err := p.set(v.field, doc, val, &st); err != nil {
				return fmt.Errorf("%w: $%s: %w", ErrNoMatch, v.name, err)
			}
		}
		pos = next
	}
	return p.finish(&st, doc)
}

// end finds where v's value, which starts at pos, ends in s, and where the
// next value starts. The value ends at the first occurrence of the literal
// after it; the last literal must end the line.
func (v *nginxVar) end(s string, pos int, last bool) (end, next int, err error) {
	switch {
	case last && strings.HasSuffix(s[pos:], v.after):
		return len(s) - len(v.after), len(s), nil
	case last:
		return 0, 0, fmt.Errorf("%w: expected %q after $%s at the end of the line", ErrNoMatch, v.after, v.name)
	}
	k := strings.Index(s[pos:], v.after)
	if k < 0 {
		return 0, 0, fmt.Errorf("%w: expected %q after $%s (from byte %d)", ErrNoMatch, v.after, v.name, pos)
	}
	return pos + k, pos + k + len(v.after), nil
}

// nginxValue decodes the \xHH escapes of nginx's default escaping in a
// value of a line that is valid UTF-8 if valid is set.
func nginxValue(v string, valid bool) string {
	i := strings.Index(v, `\x`)
	if i < 0 {
		if valid {
			return v
		}
		return validUTF8(v)
	}
	b := make([]byte, 0, len(v))
	for ; i >= 0; i = strings.Index(v, `\x`) {
		b = append(b, v[:i]...)
		v = v[i:]
		if len(v) >= 4 && unhex(v[2]) < 16 && unhex(v[3]) < 16 {
			b = append(b, unhex(v[2])<<4|unhex(v[3]))
			v = v[4:]
		} else {
			b = append(b, v[:2]...)
			v = v[2:]
		}
	}
	b = append(b, v...)
	return validUTF8(string(b))
}

// parseJSON parses an escape=json line: a JSON object whose members are
// mapped as the package documentation says.
func (p *Nginx) parseJSON(line []byte, doc *Doc) error {
	r, err := objectReader(line)
	if err != nil {
		return err
	}
	var st nginxLine
	r.members(func(name string) {
		if err != nil {
			r.value() // check the rest
			return
		}
		err = p.setMember(&r, name, doc, &st)
	})
	if jsonErr := r.finish(line); jsonErr != nil {
		return jsonErr
	}
	if err != nil {
		return err
	}
	return p.finish(&st, doc)
}

// setMember reads the value of member name into doc.
func (p *Nginx) setMember(r *jsonReader, name string, doc *Doc, st *nginxLine) error {
	switch r.next() {
	case 'n':
		r.literal("null")
		return nil
	case '{', '[':
		doc.Set("nginx."+name, r.value())
		return nil
	}
	v := r.scalar()
	if v == "" || v == "-" {
		return nil
	}
	f, ok := p.members[name]
	if !ok {
		f = nginxField(name)
	}
	if err := p.set(f, doc, v, st); err != nil {
		return fmt.Errorf("%w: %q: %w", ErrNoMatch, clip(name), err)
	}
	return nil
}

// jsonMembers finds the members of a JSON log_format whose value is one
// whole variable: "name":"$var" or "name":$var.
func (p *Nginx) jsonMembers() map[string]field {
	m := map[string]field{}
	before := p.lead
	for _, v := range p.vars {
		if name, ok := jsonMemberName(before, v.after); ok {
			m[name] = v.field
		}
		before = v.after
	}
	return m
}

// jsonMemberName reads the member name before a variable from the literal
// text around it, if the variable is the member's whole value.
func jsonMemberName(before, after string) (string, bool) {
	if b, ok := strings.CutSuffix(before, `"`); ok {
		a, ok := strings.CutPrefix(after, `"`)
		if !ok {
			return "", false
		}
		before, after = b, a
	}
	after = strings.TrimLeft(after, " \t\r\n")
	if after != "" && after[0] != ',' && after[0] != '}' {
		return "", false
	}
	before, ok := strings.CutSuffix(strings.TrimRight(before, " \t\r\n"), ":")
	if !ok {
		return "", false
	}
	before, ok = strings.CutSuffix(strings.TrimRight(before, " \t\r\n"), `"`)
	i := strings.LastIndexByte(before, '"')
	if !ok || i < 0 || strings.IndexByte(before[i:], '\\') >= 0 || i > 0 && before[i-1] == '\\' {
		return "", false // escaped names are not worth decoding
	}
	return before[i+1:], true
}

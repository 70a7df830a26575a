package parser

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every fuzzer checks that its parser does not panic and that whatever it
// returns, a document or an error and the fallback document, holds only
// valid UTF-8, finite numbers and the types Doc allows. Seeds are the golden
// cases plus testdata/fuzz/<Fuzzer>.

// addGoldenSeeds adds the golden cases of dir as seeds.
func addGoldenSeeds(f *testing.F, dir string) {
	files, _ := goldenInputs(dir)
	for _, file := range files {
		for _, line := range bytes.Split(file, []byte("\n")) {
			if !bytes.HasPrefix(line, []byte("#")) {
				f.Add(line)
			}
		}
	}
}

// parseOrFallback parses line and checks the document either way.
func parseOrFallback(t *testing.T, parse func([]byte, *Doc) error, line []byte) (*Doc, error) {
	doc := &Doc{}
	err := parse(line, doc)
	checkDoc(t, doc)
	if err != nil {
		doc.Reset()
		Fallback(line, err, doc)
		checkDoc(t, doc)
	}
	return doc, err
}

func FuzzParseService(f *testing.F) {
	addGoldenSeeds(f, "service")
	f.Fuzz(func(t *testing.T, line []byte) {
		doc, err := parseOrFallback(t, ParseService, line)
		trimmed := bytes.TrimLeft(line, " \t\r\n")
		isObject := json.Valid(line) && trimmed[0] == '{'
		if (err == nil) != isObject {
			t.Fatalf("ParseService(%q) = %v, but JSON object: %v", line, err, isObject)
		}
		if err != nil {
			return
		}
		// The reader agrees with encoding/json, and members that are not
		// well-known are copied as they are.
		r, _ := objectReader(line)
		got, want := r.value(), decodeStd(t, line)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", line, got, want)
		}
		// A log member holding a JSON object is replaced by its members.
		members := want.(map[string]any)
		if text, ok := members["log"].(string); ok && json.Valid([]byte(text)) {
			if inner, ok := decodeStd(t, []byte(text)).(map[string]any); ok {
				delete(members, "log")
				maps.Copy(members, inner)
			}
		}
		// Members beyond the bound are in the overflow object.
		over, _ := doc.Get(OverflowField)
		overflow, _ := over.(map[string]any)
		for k, v := range members {
			got, ok := doc.Get(k)
			if !ok {
				got = overflow[k]
			}
			if !wellKnown(k) && !reflect.DeepEqual(got, v) {
				t.Fatalf("%q: member %q is %#v, want %#v", line, k, got, v)
			}
		}
	})
}

// wellKnown says whether ParseService may move or replace member k.
func wellKnown(k string) bool {
	switch k {
	case "@timestamp", "_@timestamp", "timestamp", "time", "ts",
		"message", "msg", "log.level", "level", "severity", "lvl",
		"service.name", "service", "service.environment", "environment", "env",
		"organization.name", "customer",
		"error", "host", "user", "url", "client", "source", "file", "process", "event", "log", OverflowField,
		"http.request.id", "request_id", "requestId", "req_id", "x_request_id",
		"trace.id", "trace_id", "traceId", "traceID", "span.id", "span_id", "spanId", "spanID", "traceparent":
		return true
	}
	return false
}

// FuzzNginx renders access log lines from random values with the default
// format and nginx's escaping, and checks they parse back to those values.
func FuzzNginx(f *testing.F) {
	f.Add([]byte{81, 2, 69, 142}, "alice", int64(1764064800), int16(60), "GET", "/a?b=c", "1.1",
		uint16(200), uint32(1234), "https://example.com/", "curl/8.5.0", uint32(12), uint16(10), uint16(0), uint8(1), "203.0.113.9, 10.0.0.7")
	f.Add(netip.MustParseAddr("2001:db8::1").AsSlice(), "", int64(0), int16(-300), "POST", "", "2.0",
		uint16(0), uint32(0), "-", `x"y\z`, uint32(0), uint16(0), uint16(0), uint8(0), "")
	f.Add([]byte{}, "-", int64(253402300799), int16(840), "\xff", "/\x00\"", "\xc3",
		uint16(65535), uint32(4294967295), "\n", "é", uint32(4294967295), uint16(65535), uint16(1), uint8(3), ", ,")
	p, err := CompileNginx(DefaultNginxFormat)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, addr []byte, user string, sec int64, offsetMinutes int16, method, target, version string,
		status uint16, size uint32, referrer, agent string, requestMillis uint32, up1, up2 uint16, ups uint8, xff string) {
		ip, _ := netip.AddrFromSlice(addr)
		a := access{
			addr: ip, user: strings.ReplaceAll(user, " ", "_"),
			time:   time.Unix(sec%253402300800, 0).In(time.FixedZone("", int(offsetMinutes)%(15*60)*60)),
			method: strings.ReplaceAll(method, " ", "_"), target: target, version: strings.ReplaceAll(version, " ", "_"),
			status: status, bytes: size, referrer: referrer, agent: agent, requestMillis: requestMillis,
			upstream: []uint16{up1, up2, up1}[:ups%4], redirect: ups%2 == 1, forwardedFor: xff,
		}
		if a.time.Year() < 0 || a.time.Year() > 9999 || a.method == "" || a.version == "" {
			return // not something nginx writes
		}
		line := a.line()
		doc, err := parseOrFallback(t, p.Parse, []byte(line))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if got, want := doc.Map(), a.doc(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", line, got, want)
		}
	})
}

// FuzzNginxLine feeds arbitrary lines to the named formats and a custom one.
func FuzzNginxLine(f *testing.F) {
	addGoldenSeeds(f, "nginx")
	addGoldenSeeds(f, "nginx_combined")
	addGoldenSeeds(f, "nginx_main")
	addGoldenSeeds(f, "nginx_traced")
	formats := []*Nginx{}
	for _, format := range []string{DefaultNginxFormat, FormatCombined, FormatMain, testCustomFormat, FormatTraced} {
		p, err := CompileNginx(format)
		if err != nil {
			f.Fatal(err)
		}
		formats = append(formats, p)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, p := range formats {
			parseOrFallback(t, p.Parse, line)
		}
	})
}

// FuzzNginxJSON feeds arbitrary lines to a JSON log_format and checks the
// members that go to nginx.<name> against encoding/json.
func FuzzNginxJSON(f *testing.F) {
	addGoldenSeeds(f, "nginx_json")
	f.Add([]byte(`{"a\u0000b":"\ud83d\ude00","x":1.5e3,"y":true,"z":"-","w":""}`))
	p, err := CompileNginx(testJSONFormat)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		doc, err := parseOrFallback(t, p.Parse, line)
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 || line[0] != '{' {
			return
		}
		if err == nil && !json.Valid(line) {
			t.Fatalf("%q is not JSON but parsed", line)
		}
		if err != nil {
			return
		}
		for k, want := range genericMembers(t, line) {
			if _, mapped := p.members[k]; mapped || nginxField(k).key.String() != "nginx."+k || writtenByKnown(k) {
				continue
			}
			if got, ok := doc.Get("nginx." + k); want != "" && got != want || want == "" && ok {
				t.Fatalf("%q: nginx.%s = %#v, want %q", line, k, got, want)
			}
		}
	})
}

// genericMembers decodes line with encoding/json and returns, for each
// member name whose values are all strings, numbers or booleans, the last
// present value (not "", "-" or null): what a variable stored as text ends
// up as.
func genericMembers(t *testing.T, line []byte) map[string]string {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	nested := map[string]bool{}
	for dec.More() {
		k, _ := dec.Token()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		var text string
		switch x := v.(type) {
		case string:
			text = x
		case json.Number:
			text = string(x)
		case bool:
			text = strconv.FormatBool(x)
		case nil:
		default:
			nested[k.(string)] = true
		}
		if text == "-" {
			text = ""
		}
		if _, seen := out[k.(string)]; !seen || text != "" {
			out[k.(string)] = text
		}
	}
	for k := range nested {
		delete(out, k)
	}
	return out
}

// writtenByKnown says whether a known variable also writes nginx.<k>.
func writtenByKnown(k string) bool {
	switch k {
	case "upstream_response_times", "x_forwarded_for", "upstream_attempts", "upstream_tries", "own_time", "request_id":
		return true
	}
	return false
}

func FuzzCRI(f *testing.F) {
	addGoldenSeeds(f, "cri")
	f.Fuzz(func(t *testing.T, line []byte) {
		c, err := ParseCRI(line)
		if err != nil {
			return
		}
		if c.Stream != "stdout" && c.Stream != "stderr" {
			t.Fatalf("%q: stream %q", line, c.Stream)
		}
		if len(c.Log) > 0 && &c.Log[0] != &line[len(line)-len(c.Log)] {
			t.Fatalf("%q: log %q is not the end of the line", line, c.Log)
		}
		tag := "F"
		if c.Partial {
			tag = "P"
		}
		again := c.Time.Format(time.RFC3339Nano) + " " + c.Stream + " " + tag + " " + string(c.Log)
		c2, err := ParseCRI([]byte(again))
		if err != nil || !c2.Time.Equal(c.Time) || c2.Stream != c.Stream || c2.Partial != c.Partial || !bytes.Equal(c2.Log, c.Log) {
			t.Fatalf("%q rendered as %q parses to %+v, %v", line, again, c2, err)
		}
	})
}

// FuzzCompileNginx compiles random formats and parses a random line, the
// format itself and, where every variable stores its text as it is, a
// line rendered from the format.
func FuzzCompileNginx(f *testing.F) {
	f.Add(DefaultNginxFormat, []byte(`1.2.3.4 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 0.1 0.1 "-"`))
	f.Add(testCustomFormat, []byte("1|2|3"))
	f.Add(testJSONFormat, []byte(`{"ip":"1.2.3.4"}`))
	f.Add(`$a ${b}x$c`, []byte("1 2x3"))
	f.Add(`[$remote_user] <$http_referer> $request_id`, []byte("[] <> z"))
	f.Fuzz(func(t *testing.T, format string, line []byte) {
		p, err := CompileNginx(format)
		if err != nil {
			return
		}
		parseOrFallback(t, p.Parse, line)
		parseOrFallback(t, p.Parse, []byte(format))
		rendered, want, ok := renderPlain(p)
		if !ok {
			return
		}
		doc, err := parseOrFallback(t, p.Parse, []byte(rendered))
		if err != nil || !reflect.DeepEqual(doc.Map(), want) {
			t.Fatalf("format %q, line %q: got %#v, %v; want %#v", format, rendered, doc.Map(), err, want)
		}
	})
}

// renderPlain renders a line for p whose values are runs of a letter that
// no literal holds, and the document it must parse to. ok is false if some
// variable does not store its text as it is, or no such letter exists.
func renderPlain(p *Nginx) (line string, want fields, ok bool) {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	literals := p.lead
	for _, v := range p.vars {
		if v.field.kind != kindString {
			return "", nil, false
		}
		literals += v.after
	}
	i := strings.IndexFunc(letters, func(r rune) bool { return !strings.ContainsRune(literals, r) })
	if i < 0 || strings.HasPrefix(p.lead, "{") || strings.HasSuffix(literals, "\n") || strings.HasSuffix(literals, "\r") {
		return "", nil, false
	}
	var b strings.Builder
	want = fields{}
	b.WriteString(p.lead)
	for n, v := range p.vars {
		value := strings.Repeat(letters[i:i+1], n+1)
		want[v.field.key.String()] = value
		b.WriteString(value)
		b.WriteString(v.after)
	}
	return b.String(), want, true
}

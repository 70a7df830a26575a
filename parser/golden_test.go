package parser

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/parser")

// Golden tests: testdata/parser/<parser>/<name>.log holds cases, one line
// each; a line starting with '#' names the case on the next line (an
// unnamed case is named by its line number). <name>.golden beside it holds
// what each case parses to, as a JSON array in the same order. Run
// go test ./parser -update to rewrite the golden files.

// goldenCase is what one case parses to: the document, or the error and
// the fallback document.
type goldenCase struct {
	Case  string `json:"case"`
	Doc   *Doc   `json:"doc"`
	Error string `json:"error,omitempty"`
}

// goldenParsers are the parsers the golden directories are for.
func goldenParsers(t *testing.T) map[string]func([]byte, *Doc) error {
	compile := func(format string) func([]byte, *Doc) error {
		p, err := CompileNginx(format)
		if err != nil {
			t.Fatal(err)
		}
		return p.Parse
	}
	return map[string]func([]byte, *Doc) error{
		"service":        ParseService,
		"nginx":          compile(DefaultNginxFormat),
		"nginx_combined": compile(FormatCombined),
		"nginx_main":     compile(FormatMain),
		"nginx_custom":   compile(testCustomFormat),
		"nginx_json":     compile(testJSONFormat),
		"nginx_traced":   compile(FormatTraced),
		"cri":            criDoc,
	}
}

// testCustomFormat exercises ${name}, other time and request variables and
// unknown variables.
const testCustomFormat = `${remote_addr}|$time_iso8601|$request_method|$uri|$request_uri|$server_protocol|$status|$bytes_sent|$request_length|$host|$server_name|$upstream_addr|$msec|$request_id`

// testJSONFormat is an escape=json log_format with its own member names.
const testJSONFormat = `{"time":"$time_iso8601","ip":"$remote_addr","user":"$remote_user",` +
	`"req":"$request","status":$status,"bytes":$body_bytes_sent,"rt":$request_time,` +
	`"urt":"$upstream_response_time","ref":"$http_referer","ua":"$http_user_agent",` +
	`"xff":"$http_x_forwarded_for","vhost":"$host","rid":"$request_id","pair":"$scheme://$host"}`

// criDoc renders a CRI line as a document, for the golden files.
func criDoc(line []byte, doc *Doc) error {
	c, err := ParseCRI(line)
	if err != nil {
		return err
	}
	doc.Set("time", c.Time.Format("2006-01-02T15:04:05.999999999Z07:00"))
	doc.Set("stream", c.Stream)
	doc.Set("partial", c.Partial)
	doc.Set("log", validUTF8(string(c.Log)))
	return nil
}

func TestGolden(t *testing.T) {
	for dir, parse := range goldenParsers(t) {
		files, err := filepath.Glob(filepath.Join("..", "testdata", "parser", dir, "*.log"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no golden cases for %s: %v", dir, err)
		}
		for _, file := range files {
			t.Run(dir+"/"+strings.TrimSuffix(filepath.Base(file), ".log"), func(t *testing.T) {
				checkGolden(t, file, parse)
			})
		}
	}
}

// TestGoldenParseString checks the nginx golden files with ParseString.
func TestGoldenParseString(t *testing.T) {
	if *update {
		t.Skip("-update writes the golden files with Parse")
	}
	for dir, format := range map[string]string{"nginx": DefaultNginxFormat, "nginx_combined": FormatCombined,
		"nginx_main": FormatMain, "nginx_custom": testCustomFormat, "nginx_json": testJSONFormat} {
		p, err := CompileNginx(format)
		if err != nil {
			t.Fatal(err)
		}
		files, err := filepath.Glob(filepath.Join("..", "testdata", "parser", dir, "*.log"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no golden cases for %s: %v", dir, err)
		}
		for _, file := range files {
			t.Run(dir+"/"+strings.TrimSuffix(filepath.Base(file), ".log"), func(t *testing.T) {
				checkGolden(t, file, func(line []byte, doc *Doc) error { return p.ParseString(string(line), doc) })
			})
		}
	}
}

// checkGolden parses the cases of file and compares with its golden file.
func checkGolden(t *testing.T, file string, parse func([]byte, *Doc) error) {
	in, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got := parseCases(in, parse)
	for _, c := range got {
		checkDoc(t, c.Doc)
	}
	golden := strings.TrimSuffix(file, ".log") + ".golden"
	if *update {
		if err := os.WriteFile(golden, encodeCases(t, got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./parser -update writes it)", err)
	}
	var want []json.RawMessage
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("%s: %v", golden, err)
	}
	if len(want) != len(got) {
		t.Errorf("%d cases, %s has %d", len(got), golden, len(want))
	}
	for i := range min(len(want), len(got)) {
		g := compactJSON(t, encodeCases(t, got[i]))
		if w := compactJSON(t, want[i]); !bytes.Equal(g, w) {
			t.Errorf("case %q:\n got: %s\nwant: %s", got[i].Case, g, w)
		}
	}
}

// parseCases parses each case of a .log file.
func parseCases(in []byte, parse func([]byte, *Doc) error) []goldenCase {
	var cases []goldenCase
	name := ""
	lines := bytes.Split(bytes.TrimSuffix(in, []byte("\n")), []byte("\n"))
	for i, line := range lines {
		if n, ok := bytes.CutPrefix(line, []byte("#")); ok {
			name = string(bytes.TrimSpace(n))
			continue
		}
		if name == "" {
			name = "line " + strconv.Itoa(i+1)
		}
		c := goldenCase{Case: name, Doc: &Doc{}}
		if err := parse(line, c.Doc); err != nil {
			c.Doc.Reset()
			Fallback(line, err, c.Doc)
			c.Error = err.Error()
		}
		cases = append(cases, c)
		name = ""
	}
	return cases
}

func encodeCases(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatalf("document does not encode: %v", err)
	}
	return b.Bytes()
}

func compactJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// goldenInputs reads the golden .log files of dir.
func goldenInputs(dir string) ([][]byte, error) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "parser", dir, "*.log"))
	var out [][]byte
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, err
}

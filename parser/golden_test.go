package parser

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// result is one golden line: the document a line parses into, or the error
// it is rejected with (and then the fallback document).
type result struct {
	Doc   Doc    `json:"doc"`
	Error string `json:"error,omitempty"`
}

// runGolden parses each line of testdata/parser/<name>/cases.log and
// compares with cases.golden beside it, one JSON result per line.
func runGolden(t *testing.T, name string, parse func([]byte, Doc) error) {
	t.Helper()
	dir := filepath.Join("..", "testdata", "parser", name)
	in, err := os.ReadFile(filepath.Join(dir, "cases.log"))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(in))
	for sc.Scan() {
		doc := Doc{}
		var r result
		if err := parse(sc.Bytes(), doc); err != nil {
			clear(doc)
			Fallback(sc.Bytes(), err, doc)
			r.Error = err.Error()
		}
		r.Doc = doc
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("line %q: document does not marshal: %v", sc.Text(), err)
		}
		got.Write(b)
		got.WriteByte('\n')
	}
	golden := filepath.Join(dir, "cases.golden")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./parser -update to create it)", err)
	}
	gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
	inl := strings.Split(string(in), "\n")
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Errorf("%s line %d: %q\n got: %s\nwant: %s", name, i+1, inl[min(i, len(inl)-1)], g, w)
		}
	}
}

func TestGoldenService(t *testing.T) { runGolden(t, "service", ParseService) }

func TestGoldenNginx(t *testing.T) {
	p, err := CompileNginx(DefaultNginxFormat)
	if err != nil {
		t.Fatal(err)
	}
	runGolden(t, "nginx", p.Parse)
}

func TestGoldenNginxJSON(t *testing.T) { runGolden(t, "nginx_json", ParseNginxJSON) }

func TestGoldenCRI(t *testing.T) {
	runGolden(t, "cri", func(line []byte, doc Doc) error {
		c, err := ParseCRI(line)
		if err != nil {
			return err
		}
		doc["@timestamp"] = formatTime(c.Time)
		doc["stream"] = c.Stream
		doc["partial"] = c.Partial
		doc["log"] = string(c.Log)
		return nil
	})
}

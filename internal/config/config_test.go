package config

import (
	"strings"
	"testing"
	"time"
)

type sample struct {
	Name    string        `yaml:"name"`
	Count   int           `yaml:"count"`
	Wait    time.Duration `yaml:"wait"`
	Brokers []string      `yaml:"brokers"`
	Nested  struct {
		Flag bool `yaml:"flag"`
	} `yaml:"nested"`
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDecodeExpandsEnvironment(t *testing.T) {
	src := `
name: ${NAME}
count: ${COUNT:-7}
wait: ${WAIT:-250ms}
brokers: ["${B1}", "${B2:-localhost:9092}"]
nested: {flag: true}
`
	var s sample
	if err := Decode([]byte(src), &s, env(map[string]string{"NAME": "a: b # not yaml", "B1": "k1:9092"})); err != nil {
		t.Fatal(err)
	}
	if s.Name != "a: b # not yaml" || s.Count != 7 || s.Wait != 250*time.Millisecond ||
		len(s.Brokers) != 2 || s.Brokers[0] != "k1:9092" || s.Brokers[1] != "localhost:9092" || !s.Nested.Flag {
		t.Fatalf("decoded %+v", s)
	}
}

func TestDecodeErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, src string
		env       map[string]string
		want      []string
	}{
		{"unset variable", "name: ${MISSING}\n", nil, []string{"name:", "MISSING", "${MISSING:-value}"}},
		{"unknown key", "nested:\n  flg: true\n", nil, []string{"nested.flg", "unknown key"}},
		{"misspelt key", "nme: x\n", nil, []string{"nme: unknown key; did you mean name?"}},
		{"unclosed flow list, at the file's line", "name: x\n# c\nbrokers: [a,\n  b\ncount: 1\n", nil, []string{"invalid YAML: line 3: did not find expected ',' or ']'"}},
		{"unknown key, nothing near", "nested:\n  colour: red\n", nil, []string{"nested.colour: unknown key; check its spelling"}},
		{"unknown key in a one-line flow mapping", "name: x\nnested: {flg: true}\n", nil, []string{"nested.flg: unknown key"}},
		{"unknown key after comments and blank lines", "# comment\n\n\nname: x\n# more\n\nnested:\n  # why\n\n  flg: true\n", nil, []string{"nested.flg: unknown key"}},
		{"bad number", "count: many\n", nil, []string{"count", `"many"`, "whole number"}},
		{"bad duration", "wait: soon\n", nil, []string{"wait", "duration"}},
		{"bad value after a nested mapping", "nested: {flag: true}\nbrokers: [a]\ncount: many\n", nil, []string{`count: "many" is not a valid whole number`}},
		{"unset in list", "brokers:\n  - a\n  - ${X}\n", nil, []string{"brokers[1]", "X"}},
		{"unquoted in flow list", "brokers: [a, ${X}]\n", nil, []string{"invalid YAML", `["${VAR}"]`}},
		{"not yaml", "name: [\n", nil, []string{"invalid YAML"}},
		{"empty", "", nil, []string{"empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s sample
			err := Decode([]byte(tt.src), &s, env(tt.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestSplitURLs: URLs are split where another URL starts, never inside a
// password that holds a comma.
func TestSplitURLs(t *testing.T) {
	got := SplitURLs([]string{"http://a:9200, https://u:pa,ss@b:9200,", "", "https://u:x,y,z@c:9200,http://d:9200"})
	if strings.Join(got, "|") != "http://a:9200|https://u:pa,ss@b:9200|https://u:x,y,z@c:9200|http://d:9200" {
		t.Fatalf("SplitURLs = %q", got)
	}
}

func TestSplitList(t *testing.T) {
	got := SplitList([]string{"k1:9092, k2:9092", "", "k3:9092"})
	if strings.Join(got, "|") != "k1:9092|k2:9092|k3:9092" {
		t.Fatalf("SplitList = %q", got)
	}
}

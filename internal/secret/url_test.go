package secret

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"http://127.0.0.1:9200", "http://127.0.0.1:9200"},
		{"https://u:hunter2@es:9200/base", "https://u:xxxxx@es:9200/base"},
		{"https://u:hun,ter2@es:9200", "https://u:xxxxx@es:9200"},
		// Not URLs: nothing before the last @ is printed.
		{"http://u:hunter2@es:92 00", "http://xxxxx@es:92 00"},
		{"http://u:hun%zzter2@es:9200", "http://xxxxx@es:9200"},
		{"u:hunter2@es:9200", "xxxxx@es:9200"},
		{"http://u:hunter2/x@es:9200", "http://xxxxx@es:9200"},
		{"ter2@es:9200", "xxxxx@es:9200"},
	} {
		got := RedactURL(c.in)
		if got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(got, "hunter2") || strings.Contains(got, "ter2") {
			t.Errorf("RedactURL(%q) = %q prints the password", c.in, got)
		}
	}
}

package template

import (
	"testing"
	"time"
)

func TestRenderIndexNames(t *testing.T) {
	fields := map[string]string{"type": "service", "service": "Check/Out", "environment": "..prod", "evil": "a,b*c"}
	lookup := func(k string) (string, bool) { v, ok := fields[k]; return v, ok }
	at := time.Date(2026, 11, 25, 23, 30, 0, 0, time.FixedZone("x", 2*3600))
	tests := []struct {
		tmpl, want string
	}{
		{"logs-{type}-{service}-{environment}", "logs-service-check_out-prod"},
		{"logs-{type}-{missing}", "logs-service-unknown"},
		{"{evil}", "a_b_c"},
		{"logs-{type}-{+2006.01.02}", "logs-service-2026.11.25"},
		{"-{type}", "service"},
		{"LOGS-{type}", "logs-service"},
	}
	for _, tt := range tests {
		tp, err := Parse(tt.tmpl)
		if err != nil {
			t.Fatalf("%s: %v", tt.tmpl, err)
		}
		if got := IndexName(tp.Render(lookup, at, IndexValue)); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.tmpl, got, tt.want)
		}
	}
}

func TestParseErrorsAndPattern(t *testing.T) {
	for _, bad := range []string{"", "logs-{type", "logs-{}", "x-{+}"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
	tp, _ := Parse("Logs-{type}-{service}-{+2006}")
	if p := tp.Pattern(); p != "logs-*-*-*" {
		t.Errorf("Pattern = %q", p)
	}
}

func FuzzIndexValue(f *testing.F) {
	f.Add("Check/Out..*,")
	f.Fuzz(func(t *testing.T, v string) {
		got := IndexName(IndexValue(v))
		if got == "" || len(got) > 255 || got == "." || got == ".." {
			t.Fatalf("IndexValue(%q) = %q", v, got)
		}
		for i := 0; i < len(got); i++ {
			c := got[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				t.Fatalf("IndexValue(%q) = %q has %q", v, got, c)
			}
		}
	})
}

// TestRenderDatesOutsideYears0To9999 writes one fixed name for times
// whose UTC year has not four digits, or that are unknown: year 10000 used
// to be written "10000.01.01", and an unknown time "0001.01.01".
func TestRenderDatesOutsideYears0To9999(t *testing.T) {
	tp, err := Parse("logs-{type}-{+2006.01.02}")
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(string) (string, bool) { return "nginx", true }
	for _, at := range []time.Time{
		{},
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("", -3600)),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got := IndexName(tp.Render(lookup, at, IndexValue)); got != "logs-nginx-"+OutOfRange {
			t.Errorf("at %v: %q, want logs-nginx-%s", at, got, OutOfRange)
		}
	}
	if got := IndexName(tp.Render(lookup, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), IndexValue)); got != "logs-nginx-9999.12.31" {
		t.Errorf("year 9999: %q", got)
	}
	if got := IndexName(tp.RenderWildcard(lookup, IndexValue)); got != "logs-nginx-*" {
		t.Errorf("RenderWildcard = %q, want logs-nginx-*", got)
	}
}

func TestPatternOf(t *testing.T) {
	tpl, err := Parse("Logs-{type}-{service}-{environment}-{+2006.01.02}")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		values map[string]string
		want   string
	}{
		{nil, "logs-*-*-*-*"},
		{map[string]string{"type": "nginx"}, "logs-nginx-*-*-*"},
		{map[string]string{"environment": "Prod", "type": "nginx", "other": "x"}, "logs-nginx-*-prod-*"},
	} {
		if got := tpl.PatternOf(c.values, IndexValue); got != c.want {
			t.Errorf("PatternOf(%v) = %q, want %q", c.values, got, c.want)
		}
	}
	if tpl.PatternOf(nil, IndexValue) != tpl.Pattern() {
		t.Errorf("PatternOf(nil) %q != Pattern() %q", tpl.PatternOf(nil, IndexValue), tpl.Pattern())
	}
}

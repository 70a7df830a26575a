package parser

import (
	"errors"
	"testing"
	"time"
)

func TestParseCRI(t *testing.T) {
	tests := []struct {
		line    string
		stream  string
		partial bool
		log     string
		time    string
	}{
		{"2026-11-25T10:00:00.123456789Z stdout F hello world", "stdout", false, "hello world", "2026-11-25T10:00:00.123456789Z"},
		{"2026-11-25T10:00:00Z stderr P part ", "stderr", true, "part ", "2026-11-25T10:00:00Z"},
		{"2026-11-25T10:00:00Z stdout F", "stdout", false, "", "2026-11-25T10:00:00Z"},
		{"2026-11-25T10:00:00Z stdout F ", "stdout", false, "", "2026-11-25T10:00:00Z"},
		{"2026-11-25T11:00:00+01:00 stdout P:x  two spaces", "stdout", true, " two spaces", "2026-11-25T10:00:00Z"},
	}
	for _, tt := range tests {
		line := []byte(tt.line)
		c, err := ParseCRI(line)
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		want, _ := time.Parse(time.RFC3339Nano, tt.time)
		if c.Stream != tt.stream || c.Partial != tt.partial || string(c.Log) != tt.log || !c.Time.Equal(want) {
			t.Errorf("%q: got %+v", tt.line, c)
		}
		if len(c.Log) > 0 && &c.Log[0] != &line[len(line)-len(c.Log)] {
			t.Errorf("%q: Log is a copy, not a slice of the line", tt.line)
		}
	}
}

func TestParseCRIErrors(t *testing.T) {
	for _, line := range []string{
		"",
		"2026-11-25T10:00:00Z",
		"2026-11-25T10:00:00Z stdout",
		"2026-11-25T10:00:00Z stdout hello",
		"2026-11-25T10:00:00Z stdout PF x",
		"2026-11-25T10:00:00Z STDOUT F x",
		"2026-11-25 10:00:00Z stdout F x",
		"1764064800 stdout F x",
	} {
		if _, err := ParseCRI([]byte(line)); !errors.Is(err, ErrBadCRI) {
			t.Errorf("ParseCRI(%q) = %v, want ErrBadCRI", line, err)
		}
	}
}

package parser

import (
	"errors"
	"testing"
	"time"
)

func TestParseDocker(t *testing.T) {
	for _, c := range []struct {
		line, log, stream string
		partial           bool
	}{
		{`{"log":"{\"message\":\"hi\"}\n","stream":"stdout","time":"2026-11-25T10:00:00.123456789Z"}`, `{"message":"hi"}`, "stdout", false},
		{`{"log":"first half of a long ","stream":"stderr","time":"2026-11-25T10:00:00Z","attrs":{"tag":"x"}}`, "first half of a long ", "stderr", true},
		{`{"log":"\n","stream":"stdout","time":"2026-11-25T10:00:00Z"}`, "", "stdout", false},
	} {
		got, err := ParseDocker([]byte(c.line))
		if err != nil {
			t.Fatalf("%s: %v", c.line, err)
		}
		if string(got.Log) != c.log || got.Stream != c.stream || got.Partial != c.partial || got.Time.Year() != 2026 {
			t.Errorf("%s = %+v", c.line, got)
		}
	}
	got, _ := ParseDocker([]byte(`{"log":"x\n","stream":"stdout","time":"2026-11-25T10:00:00.123456789Z"}`))
	if want := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC); !got.Time.Equal(want) {
		t.Errorf("time %v, want %v", got.Time, want)
	}
	for _, bad := range []string{
		`2026-11-25T10:00:00Z stdout F cri`, `{"stream":"stdout","time":"2026-11-25T10:00:00Z"}`,
		`{"log":"x\n","stream":"console","time":"2026-11-25T10:00:00Z"}`, `{"log":"x\n","stream":"stdout","time":"yesterday"}`,
		`{"log":"x\n","stream":"stdout","time":"2026-11-25T10:00:00Z"`, `[1]`,
	} {
		if _, err := ParseDocker([]byte(bad)); !errors.Is(err, ErrBadCRI) {
			t.Errorf("%s: error %v, want ErrBadCRI", bad, err)
		}
	}
}

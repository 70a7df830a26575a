package config

import (
	"strings"
	"testing"
	"time"
)

type NumbersInner struct {
	Retries int `yaml:"retries"`
}

type numbersConfig struct {
	Workers int           `yaml:"workers"`
	Linger  time.Duration `yaml:"linger"`
	Ratio   float64       `yaml:"ratio"`
	Inputs  []struct {
		Max int64 `yaml:"max"`
	} `yaml:"inputs"`
	Limits       map[string]int `yaml:"limits"`
	NumbersInner `yaml:",inline"`
	Nested       *NumbersInner `yaml:"nested"`
}

func TestFractionsWhereWholeNumbersGo(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	tests := []struct {
		yaml, want string
	}{
		{"workers: 2.5", "workers: 2.5 is not a whole number"},
		{"linger: 0.5", "linger: 0.5 is not a duration; write it with a unit"},
		{"inputs: [{max: 1}, {max: 1.5}]", "inputs[1].max: 1.5 is not a whole number"},
		{"limits: {a: 1e3}", "limits.a: 1e3 is not a whole number"},
		{"retries: 3.0", "retries: 3.0 is not a whole number"},
		{"nested: {retries: .5}", "nested.retries: .5 is not a whole number"},
		{"workers: 4\nlinger: 5s\nratio: 0.5\ninputs: [{max: 7}]\nlimits: {a: 1}\nretries: 3", ""},
	}
	for _, tt := range tests {
		var c numbersConfig
		err := Decode([]byte(tt.yaml), &c, noEnv)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.yaml, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: error %v, want one containing %q", tt.yaml, err, tt.want)
		}
	}
}

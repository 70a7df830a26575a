package config

import "testing"

func TestNearest(t *testing.T) {
	keys := []string{"service", "environment", "customer", "type", "nginx", "ca_file"}
	for _, tc := range []struct {
		word, want string
		ok         bool
	}{
		{"servce", "service", true},
		{"tpye", "type", true},
		{"ngnix", "nginx", true},
		{"enviroment", "environment", true},
		{"ca", "", false},      // too short for two edits
		{"service", "", false}, // itself a candidate
		{"tenant", "", false},  // nothing close
		{"custmer", "customer", true},
	} {
		got, ok := Nearest(tc.word, keys)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Nearest(%q) = %q, %v; want %q, %v", tc.word, got, ok, tc.want, tc.ok)
		}
	}
}

package config

import "testing"

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]Bytes{
		"1048576": 1 << 20, "192MiB": 192 << 20, "1GiB": 1 << 30, "512 KiB": 512 << 10,
		"200MB": 200e6, "1GB": 1e9, "64B": 64,
	} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5GiB", "-1MiB", "12 parsecs", "99999999999GiB"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
	if s := Bytes(192 << 20).String(); s != "192MiB" {
		t.Errorf("String = %s", s)
	}
}

func TestBytesYAML(t *testing.T) {
	var c struct {
		Limit Bytes `yaml:"memory_limit"`
	}
	if err := Decode([]byte("memory_limit: 256MiB\n"), &c, nil); err != nil || c.Limit != 256<<20 {
		t.Fatalf("decoded %d, %v", c.Limit, err)
	}
	err := Decode([]byte("memory_limit: lots\n"), &c, nil)
	if err == nil {
		t.Fatal("memory_limit: lots accepted")
	}
	t.Log(err)
}

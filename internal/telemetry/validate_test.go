package telemetry

import (
	"strings"
	"testing"
)

func TestHTTPConfigValidate(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{
		{"127.0.0.1:9600", ""},
		{"0.0.0.0:9601", ""},
		{":9600", ""},
		{"localhost:9600", ""},
		{"[::1]:9600", ""},
		{"not-an-address", `http.listen: "not-an-address" is not host:port`},
		{"127.0.0.1:99999", `http.listen: "127.0.0.1:99999": the port must be a number from 0 to 65535`},
		{"127.0.0.1:http-alt", `the port must be a number`},
		{"no-such-host.invalid:9600", "host no-such-host.invalid does not resolve"},
	} {
		err := HTTPConfig{Listen: tc.listen, StallAfter: DefaultStallAfter}.Validate("http")
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("listen %q: error %v, want %q", tc.listen, err, tc.want)
		}
	}
}

func TestLogConfigValidate(t *testing.T) {
	for _, tc := range []struct{ level, want string }{
		{"", ""}, {"debug", ""}, {"warn", ""}, {"error", ""},
		{"verbose", `log.level: "verbose" is not a level`},
		{"fatal", `log.level: "fatal" is not a level`},
	} {
		err := LogConfig{Level: tc.level}.Validate("log")
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("level %q: error %v, want %q", tc.level, err, tc.want)
		}
	}
}

package secret

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"go.yaml.in/yaml/v3"
)

const pw = "hunter2-very-secret"

func TestValueNeverPrints(t *testing.T) {
	v := Value(pw)
	type holder struct {
		User     string `json:"user" yaml:"user"`
		Password Value  `json:"password" yaml:"password"`
	}
	h := holder{User: "u", Password: v}
	js, _ := json.Marshal(h)
	ym, _ := yaml.Marshal(h)
	core, logs := observer.New(zapcore.DebugLevel)
	zap.New(core).Info("x", zap.Any("any", v), zap.Stringer("stringer", v), zap.Any("struct", h), zap.Reflect("reflect", h))
	var logged strings.Builder
	for _, e := range logs.All() {
		for k, f := range e.ContextMap() {
			fmt.Fprintf(&logged, "%s=%v\n", k, f)
		}
	}
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", v), "%s": fmt.Sprintf("%s", v), "%q": fmt.Sprintf("%q", v), "%x": fmt.Sprintf("%x", v),
		"%+v struct": fmt.Sprintf("%+v", h), "%#v struct": fmt.Sprintf("%#v", h), "%d": fmt.Sprintf("%d", v),
		"error": fmt.Errorf("wrapped %v: %w", v, errors.New("x")).Error(),
		"json":  string(js), "yaml": string(ym), "zap": logged.String(),
	} {
		if strings.Contains(out, pw) || strings.Contains(out, fmt.Sprintf("%x", pw)) {
			t.Errorf("%s prints the secret: %s", name, out)
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s does not say %s: %s", name, Redacted, out)
		}
	}
	if v.Reveal() != pw {
		t.Errorf("Reveal = %q", v.Reveal())
	}
	if Value("").String() != "" {
		t.Errorf("an empty value prints %q, want nothing", Value("").String())
	}
}

func TestValueDecodesFromYAML(t *testing.T) {
	var h struct {
		Password Value `yaml:"password"`
	}
	if err := yaml.Unmarshal([]byte("password: "+pw+"\n"), &h); err != nil {
		t.Fatal(err)
	}
	if h.Password.Reveal() != pw {
		t.Fatalf("decoded %q", h.Password.Reveal())
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		value   Value
		file    string
		want    string
		wantErr string
	}{
		{name: "value", value: "inline", want: "inline"},
		{name: "file, newline trimmed", file: file, want: pw},
		{name: "neither", want: ""},
		{name: "both", value: "inline", file: file, wantErr: "both the value and its _file are set"},
		{name: "missing file", file: filepath.Join(dir, "nope"), wantErr: "no such file"},
		{name: "empty file", file: empty, wantErr: "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(tc.value, tc.file)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), pw) {
					t.Fatalf("error prints the secret: %v", err)
				}
				return
			}
			if err != nil || got.Reveal() != tc.want {
				t.Fatalf("got %q, %v; want %q", got.Reveal(), err, tc.want)
			}
		})
	}
}

// Package secret holds credentials so that they cannot leak by accident:
// a Value prints as [redacted] with every fmt verb, in JSON, YAML and zap
// fields, and only Reveal gives the text back. Values come from the
// configuration (where ${VAR} reads the environment) or from a file, such
// as a Kubernetes Secret mounted as a volume.
package secret

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Redacted is what a non-empty Value prints as.
const Redacted = "[redacted]"

// Value is a password, API key or similar credential.
type Value string

// Reveal returns the credential itself, for the one place that sends it.
func (v Value) Reveal() string { return string(v) }

// IsSet reports whether the value is non-empty.
func (v Value) IsSet() bool { return v != "" }

// String returns [redacted], or "" for an empty value.
func (v Value) String() string {
	if v == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the value.
func (v Value) GoString() string { return fmt.Sprintf("secret.Value(%q)", v.String()) }

// Format prints String with any verb, so %x or %q cannot print the value
// either.
func (v Value) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", v.String())
		return
	}
	_, _ = f.Write([]byte(v.String()))
}

// MarshalJSON writes String as a JSON string. (zap.Any takes a Value as
// a fmt.Stringer.)
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + v.String() + `"`), nil }

// MarshalYAML writes String.
func (v Value) MarshalYAML() (any, error) { return v.String(), nil }

// ReadFile reads a credential from path: the whole file, without
// trailing newlines (editors and `echo` add one). An empty file is an
// error, so that a missing secret does not become an empty password.
func ReadFile(path string) (Value, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// The path is not secret; the content never reaches the error.
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s == "" {
		return "", errors.New("secret file " + path + " is empty")
	}
	return Value(s), nil
}

// Resolve returns v, or the content of file when file is set. Setting both
// is an error the caller reports with its key path.
func Resolve(v Value, file string) (Value, error) {
	if file == "" {
		return v, nil
	}
	if v != "" {
		return "", errors.New("both the value and its _file are set; keep one")
	}
	return ReadFile(file)
}

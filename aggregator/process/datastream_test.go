package process

import "testing"

// TestDataStreamField checks data_stream.* from stream names.
func TestDataStreamFields(t *testing.T) {
	for name, want := range map[string][3]string{
		"logs-nginx.access-prod": {"logs", "nginx.access", "prod"},
		"logs-my-app-prod":       {"logs", "my-app", "prod"},
	} {
		typ, ds, ns, ok := dataStreamFields(name)
		if !ok || [3]string{typ, ds, ns} != want {
			t.Errorf("%s: %q %q %q %v, want %q", name, typ, ds, ns, ok, want)
		}
	}
	for _, name := range []string{"logs", "logs-prod", "-a-b", "logs--", "a-b-"} {
		if _, _, _, ok := dataStreamFields(name); ok {
			t.Errorf("%s: a data stream name", name)
		}
	}
}

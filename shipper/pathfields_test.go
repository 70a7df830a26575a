package shipper

import (
	"maps"
	"testing"
)

func TestPathFields(t *testing.T) {
	tests := []struct {
		tmpl, path string
		ok         bool
		want       map[string]string
	}{
		{"/var/log/services/{environment}/{customer}/{service}/", "/var/log/services/prod/acme/checkout/app.log", true,
			map[string]string{"environment": "prod", "customer": "acme", "service": "checkout"}},
		{"/var/log/services/{environment}/*/{service}", "/var/log/services/dev/x/api/a.log", true,
			map[string]string{"environment": "dev", "service": "api"}},
		{"/var/log/services/{environment}/", "/var/log/nginx/access.log", false, map[string]string{}},
		{"/a/{x}/b/", "/a/1", false, map[string]string{}},
	}
	for _, tt := range tests {
		p, err := compilePathFields(tt.tmpl)
		if err != nil {
			t.Fatalf("%s: %v", tt.tmpl, err)
		}
		got := map[string]string{}
		if ok := p.extract(tt.path, got); ok != tt.ok || !maps.Equal(got, tt.want) {
			t.Errorf("%s on %s = %v %v, want %v %v", tt.tmpl, tt.path, got, ok, tt.want, tt.ok)
		}
	}
	for _, bad := range []string{"relative/{x}", "/a/{x", "/a/{}/"} {
		if _, err := compilePathFields(bad); err == nil {
			t.Errorf("compilePathFields(%q) succeeded", bad)
		}
	}
}

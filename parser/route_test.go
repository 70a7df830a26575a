package parser

import (
	"regexp"
	"strings"
	"testing"
)

func TestRoute(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/api/v1/orders/8123", "/api/v1/orders/{id}"},
		{"/api/v1/orders/8124?expand=lines", "/api/v1/orders/{id}"},
		{"/api/v1/orders/8124#top", "/api/v1/orders/{id}"},
		{"/api/v1/orders/8123/lines/2", "/api/v1/orders/{id}/lines/{id}"},
		{"/users/3f2504e0-4f89-11d3-9a0c-0305e82c3301/avatar", "/users/{id}/avatar"},
		{"/blobs/5f2b9c1e8a7d4e3b", "/blobs/{id}"},                 // 16 hex
		{"/objects/507f1f77bcf86cd799439011", "/objects/{id}"},     // Mongo ObjectId
		{"/sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/sessions/{id}"}, // ULID
		{"/invite/aGVsbG8gd29ybGQ9PQ-x_12", "/invite/{id}"},        // base64url token
		{"/users/jane.doe@example.com/prefs", "/users/{id}/prefs"},
		{"/api/v1/orders", "/api/v1/orders"},
		{"/api/v2/2fa/setup", "/api/v2/2fa/setup"},
		{"/catalog/running-shoes", "/catalog/running-shoes"},
		{"/catalog/deadbeef", "/catalog/deadbeef"}, // hex letters only: a word
		{"/static/app.min.js", "/static/app.min.js"},
		{"/orders/8123/", "/orders/{id}/"},
		{"//8123", "//{id}"},
		{"/", "/"},
		{"/%E2%82%AC/1", "/%E2%82%AC/{id}"},
		{"*", "*"},
		{"", ""},
	}
	var r *Routes // nil: the built-in patterns
	for _, tt := range tests {
		if got := r.Route(tt.path); got != tt.want {
			t.Errorf("Route(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestRouteLong(t *testing.T) {
	var r Routes
	long := "/a" + strings.Repeat("/segment", 100)
	got := r.Route(long)
	if !strings.HasSuffix(got, "/...") || len(got) > maxRoute+4 || !strings.HasPrefix(long, strings.TrimSuffix(got, "/...")) {
		t.Errorf("long path: route %q", got)
	}
	ids := strings.Repeat("/12345", 200)
	if got := r.Route(ids); !strings.HasSuffix(got, "/...") || len(got) > maxRoute+4 {
		t.Errorf("long path of ids: route %q", got)
	}
}

func TestRouteRules(t *testing.T) {
	r, err := NewRoutes([]RouteRule{
		{Prefix: "/", IDs: []string{`^[A-Z]{2}-[0-9]+$`}},
		{Prefix: "/api/v1/orders", Templates: []string{"/api/v1/orders/{order}/lines/{line}"}},
		{Prefix: "/api/v1/users", Keep: []string{`^me$`, `^[0-9]{4}$`}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{"/api/v1/orders/A-1/lines/xyz", "/api/v1/orders/{order}/lines/{line}"},
		{"/api/v1/orders/8123", "/api/v1/orders/{id}"}, // no template fits: built-in patterns
		{"/api/v1/users/2024/42", "/api/v1/users/2024/{id}"},
		{"/tickets/AB-1234", "/tickets/{id}"},
		{"/api/v1/users/AB-1234", "/api/v1/users/AB-1234"}, // the longest prefix's rule only
	}
	for _, tt := range tests {
		if got := r.Route(tt.path); got != tt.want {
			t.Errorf("Route(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	for _, bad := range [][]RouteRule{
		{{Prefix: "api"}},
		{{Prefix: "/", Templates: []string{"orders/{id}"}}},
		{{Prefix: "/", IDs: []string{"("}}},
		{{Prefix: "/", Keep: []string{"["}}},
	} {
		if _, err := NewRoutes(bad); err == nil {
			t.Errorf("NewRoutes(%+v) took it", bad)
		}
	}
}

// The built-in id patterns as regular expressions: the reference Route
// is checked against.
var (
	refNumber = regexp.MustCompile(`^[0-9]+$`)
	refUUID   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	refHex    = regexp.MustCompile(`^[0-9a-fA-F]{8,}$`)
	refToken  = regexp.MustCompile(`^[0-9A-Za-z._~=-]{16,}$`)
	refEmail  = regexp.MustCompile(`^[0-9A-Za-z._~=@-]*@[0-9A-Za-z._~=@-]*$`)
	refDigit  = regexp.MustCompile(`[0-9]`)
	refLetter = regexp.MustCompile(`[A-Za-z]`)
)

// refRoute is Route with the built-in patterns, written plainly.
func refRoute(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if !strings.HasPrefix(path, "/") {
		return path
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		digits := len(refDigit.FindAllString(s, -1))
		switch {
		case s == "":
		case refEmail.MatchString(s), refNumber.MatchString(s), refUUID.MatchString(s),
			refHex.MatchString(s) && digits > 0,
			refToken.MatchString(s) && digits >= 2 && refLetter.MatchString(s):
			segs[i] = RoutePlaceholder
		}
	}
	return strings.Join(segs, "/")
}

func FuzzRoute(f *testing.F) {
	for _, s := range []string{"/api/v1/orders/8123?x", "/u/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "/a@b/c", "/x/01ARZ3NDEKTSV4RRFFQ69G5FAV/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		got, want := (*Routes)(nil).Route(path), refRoute(path)
		if len(want) <= maxRoute || !strings.HasPrefix(want, "/") { // not a path: as it is
			if got != want {
				t.Fatalf("Route(%q) = %q, want %q", path, got, want)
			}
			return
		}
		if !strings.HasSuffix(got, "/...") || !strings.HasPrefix(want, strings.TrimSuffix(got, "/...")) {
			t.Fatalf("Route(%q) = %q, want a prefix of %q", path, got, want)
		}
	})
}

func BenchmarkRoute(b *testing.B) {
	var r Routes
	b.ReportAllocs()
	for b.Loop() {
		r.Route("/api/v1/orders/8123/lines?expand=all")
	}
}

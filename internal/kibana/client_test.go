package kibana

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// received is what the fake Kibana saw of one request.
type received struct {
	method, path, query     string
	xsrf, auth, contentType string
	fieldName, fileName     string
	fileType                string
	file                    []byte
	parts                   int
}

// fakeKibana answers the import API with status and body, and records the
// request.
func fakeKibana(t *testing.T, status int, body string) (*httptest.Server, func() received) {
	t.Helper()
	var mu sync.Mutex
	var got received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = received{
			method: r.Method, path: r.URL.Path, query: r.URL.RawQuery,
			xsrf: r.Header.Get("kbn-xsrf"), auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type"),
		}
		mt, params, err := mime.ParseMediaType(got.contentType)
		if err == nil && mt == "multipart/form-data" {
			mr := multipart.NewReader(r.Body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				got.parts++
				got.fieldName, got.fileName, got.fileType = p.FormName(), p.FileName(), p.Header.Get("Content-Type")
				got.file, _ = io.ReadAll(p)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() received { mu.Lock(); defer mu.Unlock(); return got }
}

const okBody = `{"success":true,"successCount":2,"successResults":[
 {"type":"index-pattern","id":"sluice-logs","meta":{"title":"logs-*","icon":"indexPatternApp"}},
 {"type":"dashboard","id":"sluice-overview","meta":{"title":"Sluice overview","icon":"dashboardApp"}}]}`

var ndjson = []byte(`{"type":"index-pattern","id":"sluice-logs","attributes":{"title":"logs-*"}}` + "\n" +
	`{"type":"dashboard","id":"sluice-overview","attributes":{"title":"Sluice overview"}}` + "\n")

// TestImportReadsSecretFiles: kibana.password_file and api_key_file are
// sent as the credentials.
func TestImportReadsSecretFiles(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Username: "elastic", PasswordFile: file}, "Basic " + base64.StdEncoding.EncodeToString([]byte("elastic:s3cret"))},
		{Config{APIKeyFile: file}, "ApiKey s3cret"},
	} {
		srv, got := fakeKibana(t, http.StatusOK, okBody)
		c.cfg.URL = srv.URL
		if _, err := New(c.cfg, srv.Client()).Import(context.Background(), "sluice.ndjson", ndjson); err != nil {
			t.Fatalf("Import: %v", err)
		}
		if r := got(); r.auth != c.want {
			t.Errorf("Authorization %q, want %q", r.auth, c.want)
		}
	}
}

func TestImportRequest(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("elastic:s3cret"))
	tests := []struct {
		name     string
		cfg      Config
		wantPath string
		wantAuth string
	}{
		{"no credentials, default space", Config{}, "/api/saved_objects/_import", ""},
		{"basic auth", Config{Username: "elastic", Password: "s3cret"}, "/api/saved_objects/_import", basic},
		{"api key", Config{APIKey: "aWQ6a2V5"}, "/api/saved_objects/_import", "ApiKey aWQ6a2V5"},
		{"space", Config{Space: "ops"}, "/s/ops/api/saved_objects/_import", ""},
		{"default space named", Config{Space: "default"}, "/api/saved_objects/_import", ""},
		{"base path with trailing slash", Config{URL: "/kibana/"}, "/kibana/api/saved_objects/_import", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := fakeKibana(t, http.StatusOK, okBody)
			cfg := tt.cfg
			cfg.URL = srv.URL + cfg.URL
			res, err := New(cfg, srv.Client()).Import(context.Background(), "sluice.ndjson", ndjson)
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			r := got()
			if r.method != http.MethodPost {
				t.Errorf("method %s, want POST", r.method)
			}
			if r.path != tt.wantPath {
				t.Errorf("path %s, want %s", r.path, tt.wantPath)
			}
			if r.query != "overwrite=true" {
				t.Errorf("query %q, want overwrite=true", r.query)
			}
			if r.xsrf == "" {
				t.Error("no kbn-xsrf header")
			}
			if r.auth != tt.wantAuth {
				t.Errorf("Authorization %q, want %q", r.auth, tt.wantAuth)
			}
			if !strings.HasPrefix(r.contentType, "multipart/form-data; boundary=") {
				t.Errorf("Content-Type %q, want multipart/form-data", r.contentType)
			}
			if r.parts != 1 || r.fieldName != "file" || r.fileName != "sluice.ndjson" {
				t.Errorf("multipart: %d parts, field %q, file name %q; want one part, field file, sluice.ndjson", r.parts, r.fieldName, r.fileName)
			}
			if r.fileType != "application/ndjson" {
				t.Errorf("part Content-Type %q, want application/ndjson", r.fileType)
			}
			if !bytes.Equal(r.file, ndjson) {
				t.Errorf("file content differs from the NDJSON sent:\n%s", r.file)
			}
			want := []Object{{"index-pattern", "sluice-logs", "logs-*"}, {"dashboard", "sluice-overview", "Sluice overview"}}
			if len(res.Objects) != len(want) {
				t.Fatalf("objects %v, want %v", res.Objects, want)
			}
			for i := range want {
				if res.Objects[i] != want[i] {
					t.Errorf("object %d: %v, want %v", i, res.Objects[i], want[i])
				}
			}
		})
	}
}

func TestImportHTTPErrorShowsKibanaMessage(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"kibana json error", `{"statusCode":401,"error":"Unauthorized","message":"[security_exception]: unable to authenticate user [elastic]"}`,
			401, "Kibana answered 401 Unauthorized: [security_exception]: unable to authenticate user [elastic]"},
		{"unsupported file", `{"statusCode":415,"error":"Unsupported Media Type","message":"Invalid file extension .txt"}`,
			415, "Invalid file extension .txt"},
		{"plain text proxy error", "upstream connect error", 502, "Kibana answered 502 Bad Gateway: upstream connect error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeKibana(t, tt.status, tt.body)
			_, err := New(Config{URL: srv.URL}, srv.Client()).Import(context.Background(), "sluice.ndjson", ndjson)
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != tt.status {
				t.Fatalf("error %v, want an *APIError with status %d", err, tt.status)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestImportObjectErrors(t *testing.T) {
	body := `{"success":false,"successCount":1,
	 "successResults":[{"type":"index-pattern","id":"sluice-logs","meta":{"title":"logs-*"}}],
	 "errors":[{"id":"sluice-map","type":"map","meta":{"title":"Client locations"},
	   "error":{"type":"missing_references","references":[{"type":"index-pattern","id":"other"}]}},
	  {"id":"x","type":"lens","meta":{"title":"X"},"error":{"type":"unknown","message":"bad state","statusCode":400}}]}`
	srv, _ := fakeKibana(t, http.StatusOK, body)
	res, err := New(Config{URL: srv.URL}, srv.Client()).Import(context.Background(), "sluice.ndjson", ndjson)
	var ie *ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v, want an *ImportError", err)
	}
	if len(ie.Errors) != 2 || ie.Errors[0].Reason != "missing_references" || ie.Errors[1].Detail != "bad state" {
		t.Errorf("object errors %+v", ie.Errors)
	}
	for _, want := range []string{"map sluice-map: missing_references (missing index-pattern other)", "lens x: unknown (bad state)", "1 imported"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if len(res.Objects) != 1 || res.Objects[0].ID != "sluice-logs" {
		t.Errorf("imported objects %v, want the data view", res.Objects)
	}
}

func TestImportNotKibana(t *testing.T) {
	srv, _ := fakeKibana(t, http.StatusOK, "<html>hello</html>")
	_, err := New(Config{URL: srv.URL}, srv.Client()).Import(context.Background(), "sluice.ndjson", ndjson)
	if err == nil || !strings.Contains(err.Error(), "is "+srv.URL+" Kibana?") {
		t.Fatalf("error %v, want one asking whether the URL is Kibana", err)
	}
}

func TestConfigValidate(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("pw-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" means valid
	}{
		{"empty is off", Config{}, ""},
		{"url only", Config{URL: "http://kibana:5601"}, ""},
		{"https with base path and space", Config{URL: "https://example.com/kibana", Space: "team-a_1"}, ""},
		{"basic auth", Config{URL: "http://kibana:5601", Username: "elastic", Password: "x"}, ""},
		{"api key", Config{URL: "http://kibana:5601", APIKey: "aWQ6a2V5"}, ""},
		{"credentials without url", Config{Username: "elastic"}, "kibana.username: is set but kibana.url is not"},
		{"space without url", Config{Space: "ops"}, "kibana.space: is set but kibana.url is not"},
		{"not a url", Config{URL: "kibana:5601"}, "kibana.url: \"kibana:5601\" must be a URL"},
		{"no host", Config{URL: "http://"}, "kibana.url:"},
		{"query", Config{URL: "http://kibana:5601/?x=1"}, "kibana.url: \"http://kibana:5601/?x=1\" must not have a query"},
		{"credentials in url", Config{URL: "http://u:pw-secret@kibana:5601"}, `kibana.url: "http://u:xxxxx@kibana:5601" must not hold credentials`},
		{"credentials in url with a query", Config{URL: "http://u:pw-secret@kibana:5601/?x=1"}, "kibana.url: \"http://u:xxxxx@kibana:5601/?x=1\" must not hold credentials"},
		{"credentials in a url that does not parse", Config{URL: "http://u:pw-secret@kibana:56 01"}, "kibana.url: \"http://xxxxx@kibana:56 01\" must be a URL"},
		{"password from a file", Config{URL: "http://kibana:5601", Username: "elastic", PasswordFile: pwFile}, ""},
		{"api key from a file", Config{URL: "http://kibana:5601", APIKeyFile: pwFile}, ""},
		{"password file missing", Config{URL: "http://kibana:5601", Username: "elastic", PasswordFile: pwFile + ".nope"}, "kibana.password_file: reading secret file"},
		{"password and its file", Config{URL: "http://kibana:5601", Username: "elastic", Password: "pw-secret", PasswordFile: pwFile}, "kibana.password_file: both the value and its _file are set"},
		{"api key file and username", Config{URL: "http://kibana:5601", Username: "u", APIKeyFile: pwFile}, "kibana.api_key: set either api_key or username/password"},
		{"password file without url", Config{PasswordFile: pwFile}, "kibana.password_file: is set but kibana.url is not"},
		{"both auths", Config{URL: "http://kibana:5601", APIKey: "k", Username: "u"}, "kibana.api_key: set either api_key or username/password"},
		{"password alone", Config{URL: "http://kibana:5601", Password: "x"}, "kibana.username: is required with kibana.password"},
		{"bad space", Config{URL: "http://kibana:5601", Space: "Ops Team"}, "kibana.space: \"Ops Team\" is not a Kibana space id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate("kibana")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "pw-secret"):
				t.Fatalf("Validate prints the password: %v", err)
			}
		})
	}
}

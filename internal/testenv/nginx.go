package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/nginxproc"
)

// Nginx is a real nginx terminating TLS in front of the stack's
// Elasticsearch, which has no security module of its own. It listens on two
// HTTPS ports: BasicURL wants basic authentication, APIKeyURL wants the
// header "Authorization: ApiKey <key>"; both answer 401 otherwise.
type Nginx struct {
	BasicURL, APIKeyURL string
	// Plain is the HTTPS port's host:port, for tests that speak plain
	// HTTP to it.
	Plain string
	dir   string
}

// NginxOptions configure StartNginx.
type NginxOptions struct {
	// CertFile and KeyFile are the server's certificate and key (e.g. from
	// CA.Issue, valid for 127.0.0.1).
	CertFile, KeyFile string
	// Username and Password are the one user of the basic-auth port.
	Username, Password string
	// APIKey is the one key the API-key port accepts.
	APIKey string
}

// StartNginx runs nginx in the foreground as the test's child, with its
// configuration, pid file, logs and temporary files in a temporary
// directory, and stops it when the test ends. It fails the test (never
// skips it) when nginx is not installed.
func (s *Stack) StartNginx(t testing.TB, o NginxOptions) *Nginx {
	t.Helper()
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	hash := exec.Command("openssl", "passwd", "-apr1", "-stdin")
	hash.Stdin = strings.NewReader(o.Password + "\n")
	out, err := hash.Output()
	if err != nil {
		t.Fatalf("openssl passwd -apr1: %v", err)
	}
	if err := os.WriteFile(htpasswd, []byte(o.Username+":"+strings.TrimSpace(string(out))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	basicPort, keyPort := freePort(t), freePort(t)
	upstream := strings.TrimPrefix(strings.TrimPrefix(s.Elasticsearch, "http://"), "https://")
	conf := fmt.Sprintf(`
  access_log %[1]s/access.log;
  client_max_body_size 200m;
  ssl_certificate %[2]s;
  ssl_certificate_key %[3]s;
  map $http_authorization $apikey_ok {
    default 0;
    "ApiKey %[4]s" 1;
  }
  upstream elasticsearch { server %[5]s; keepalive 8; }
  server {
    listen 127.0.0.1:%[6]d ssl;
    auth_basic "sluice test";
    auth_basic_user_file %[7]s;
    location / {
      proxy_pass http://elasticsearch;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "";
    }
  }
  server {
    listen 127.0.0.1:%[8]d ssl;
    location / {
      if ($apikey_ok = 0) { return 401; }
      proxy_pass http://elasticsearch;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "";
    }
  }
`, dir, o.CertFile, o.KeyFile, o.APIKey, upstream, basicPort, htpasswd, keyPort)
	RunNginx(t, dir, conf, basicPort, keyPort)
	return &Nginx{
		BasicURL:  fmt.Sprintf("https://127.0.0.1:%d", basicPort),
		APIKeyURL: fmt.Sprintf("https://127.0.0.1:%d", keyPort),
		Plain:     fmt.Sprintf("127.0.0.1:%d", basicPort),
		dir:       dir,
	}
}

// RunNginx runs nginx (see nginxproc.Start) with the directives of its
// http block given and its files in dir, until the test ends. It fails the
// test (never skips it) when nginx is not installed.
func RunNginx(t testing.TB, dir, httpBlock string, ports ...int) {
	t.Helper()
	p, err := nginxproc.Start(dir, httpBlock, ports...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
}

// FreePort returns a TCP port nothing listens on right now.
func FreePort(t testing.TB) int { return freePort(t) }

// ErrorLog returns nginx's error log, for failure messages.
func (n *Nginx) ErrorLog() string {
	data, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return string(data)
}

// AccessLog returns nginx's access log: one line per request it answered.
func (n *Nginx) AccessLog() string {
	data, _ := os.ReadFile(filepath.Join(n.dir, "access.log"))
	return string(data)
}

// freePort returns a TCP port nothing listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// RunNginx runs nginx in the foreground as the test's child with the
// directives of its http block given, and its pid file, error log
// (dir/error.log) and temporary files in dir; it returns once nginx
// listens on ports, and stops it when the test ends. It fails the test
// (never skips it) when nginx is not installed.
func RunNginx(t testing.TB, dir, httpBlock string, ports ...int) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/nginx"); statErr != nil {
			t.Fatalf("nginx is not installed: run `make tools` (as root it runs apt-get install -y nginx)")
		}
		bin = "/usr/sbin/nginx"
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers must read the 0700 temporary directory
	}
	conf := fmt.Sprintf(`
%[1]s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 256; }
http {
  client_body_temp_path %[2]s/tmp/body;
  proxy_temp_path %[2]s/tmp/proxy;
  fastcgi_temp_path %[2]s/tmp/fastcgi;
  uwsgi_temp_path %[2]s/tmp/uwsgi;
  scgi_temp_path %[2]s/tmp/scgi;
%[3]s
}
`, user, dir, httpBlock)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	errorLog := func() string {
		data, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return string(data)
	}
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confFile, "-g", "daemon off;")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers are stopped with it
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range ports {
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				t.Fatalf("nginx exited at start: %s\n%s", output.String(), errorLog())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("nginx does not listen on %d after 10s: %s", port, errorLog())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
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

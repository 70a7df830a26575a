// Package nginxproc runs a real nginx in the foreground with a
// configuration of the caller's, for the tests and the demo that put
// nginx in front of something.
package nginxproc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ErrNotInstalled is returned when there is no nginx binary.
var ErrNotInstalled = errors.New("nginx is not installed: run `make tools` (as root it runs apt-get install -y nginx)")

// Proc is a running nginx.
type Proc struct {
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs nginx with the directives of its http block given, and its
// pid file, error log (dir/error.log) and temporary files in dir, and
// returns once it listens on ports (on 127.0.0.1).
func Start(dir, httpBlock string, ports ...int) (*Proc, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/nginx"); statErr != nil {
			return nil, ErrNotInstalled
		}
		bin = "/usr/sbin/nginx"
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, err
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
		return nil, err
	}
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confFile, "-g", "daemon off;")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers are stopped with it
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting nginx: %w", err)
	}
	p := &Proc{dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range ports {
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.exited:
				return nil, fmt.Errorf("nginx exited at start: %s\n%s", output.String(), p.ErrorLog())
			default:
			}
			if time.Now().After(deadline) {
				p.Stop()
				return nil, fmt.Errorf("nginx does not listen on %d after 10s: %s", port, p.ErrorLog())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return p, nil
}

// Stop stops nginx and its workers: SIGTERM, SIGKILL after 10s.
func (p *Proc) Stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// ErrorLog returns nginx's error log, for failure messages.
func (p *Proc) ErrorLog() string {
	data, _ := os.ReadFile(filepath.Join(p.dir, "error.log"))
	return string(data)
}

// FreePort returns a TCP port nothing listens on right now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

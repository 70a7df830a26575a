package testenv

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// Ports of the Kafka listener meant for a proxy: the broker advertises
// ProxyPort on it, so a client that bootstraps at the proxy keeps every
// connection going through it (see deploy/local/stack.sh).
const (
	KafkaProxyPort    = "9095"
	KafkaProxiedAddr  = "127.0.0.1:9094"
	kafkaProxyAddress = "127.0.0.1:" + KafkaProxyPort
)

// Proxy is a TCP proxy that a test can cut, to make a server unreachable
// without stopping it for the other tests.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// KafkaProxy starts a proxy in front of the local Kafka and returns it with
// the broker address to give clients. One test at a time holds it, across
// test processes; it is released when the test ends.
func (s *Stack) KafkaProxy(t testing.TB) (*Proxy, string) {
	t.Helper()
	// The lock lives with the stack's data ($SLUICE_LOCAL when set), so
	// test processes of every checkout sharing the stack take turns.
	dir := os.Getenv("SLUICE_LOCAL")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, ".local")
	}
	lock, err := os.OpenFile(filepath.Join(dir, "kafka-proxy.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("proxy lock: %v", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("proxy lock: %v", err)
	}
	p, err := NewProxy(kafkaProxyAddress, KafkaProxiedAddr)
	if err != nil {
		lock.Close()
		t.Fatalf("kafka proxy: %v", err)
	}
	t.Cleanup(func() {
		p.Close()
		lock.Close()
	})
	return p, kafkaProxyAddress
}

// NewProxy listens on listen ("127.0.0.1:0" for any port) and forwards to
// target.
func NewProxy(listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Close stops the proxy.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		if !cut {
			p.conns[c] = true
		}
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[up] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, up)
		p.mu.Unlock()
		up.Close()
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

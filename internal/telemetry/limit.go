package telemetry

import (
	"net"
	"sync"
	"time"
)

// Limits of the metrics and health server. Its clients are a Prometheus
// scraper and a few probes: every connection past that, or one held open
// doing nothing, only costs the process memory (3,000 idle keep-alive
// connections took a shipper from 28 to 79 MB).
const (
	maxConns          = 64
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second // a large /metrics on a slow scraper
	idleTimeout       = 30 * time.Second
)

// limitListener accepts at most n connections at a time: past that, Accept
// waits for one to close, and new connections wait in the kernel's queue
// (and time out at the client) instead of each holding a goroutine and its
// buffers.
type limitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn gives its slot back once, on the first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

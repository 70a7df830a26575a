package telemetry

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// TestServerClosesIdleAndCapsConnections: keep-alive connections left idle
// are closed after the idle timeout, and a connection past the cap is not
// served until one of the others is gone.
func TestServerClosesIdleAndCapsConnections(t *testing.T) {
	const capacity, idle = 3, 500 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := NewServer("", prometheus.NewRegistry(), zap.NewNop())
	go func() { _ = s.serve(ctx, newLimitListener(ln, capacity), idle) }()

	get := func(c net.Conn, r *bufio.Reader) error {
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	var held []net.Conn
	var readers []*bufio.Reader
	for range capacity {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		if err := get(c, r); err != nil {
			t.Fatal(err)
		}
		held, readers = append(held, c), append(readers, r)
	}
	start := time.Now()

	// One more: accepted by the kernel, not served while the others hold
	// every slot.
	extra, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(idle / 2))
	if err := get(extra, bufio.NewReader(extra)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection past the cap: %v, want no answer while the others are open", err)
	}

	// The idle ones are closed by the server...
	for i, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := readers[i].ReadByte(); err != io.EOF {
			t.Fatalf("idle connection %d: %v, want closed by the server", i, err)
		}
	}
	if waited := time.Since(start); waited < idle/2 {
		t.Fatalf("idle connections closed after %v, before the idle timeout %v", waited, idle)
	}
	// ...and a new connection is then served.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := get(c, bufio.NewReader(c)); err != nil {
		t.Fatalf("after the idle ones closed: %v", err)
	}
}

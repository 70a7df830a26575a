// Package telemetry holds what every Sluice process exposes about itself: a
// JSON zap logger, a Prometheus registry, and an HTTP server for /metrics,
// /healthz and /readyz.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// HTTPConfig is where a process serves /metrics, /healthz and /readyz.
type HTTPConfig struct {
	Listen string `yaml:"listen"`
	// StallAfter is how long work may wait with no progress before
	// /readyz fails and the stalled gauge reads 1 (default 60s).
	StallAfter time.Duration `yaml:"stall_after"`
}

// SetDefaults fills stall_after; the listen address is each role's own.
func (c *HTTPConfig) SetDefaults() {
	if c.StallAfter == 0 {
		c.StallAfter = DefaultStallAfter
	}
}

// LogConfig sets a process's own logging.
type LogConfig struct {
	Level string `yaml:"level"`
}

// NewLogger returns a JSON logger at level ("debug", "info", "warn", "error").
func NewLogger(level string) (*zap.Logger, error) {
	lvl := zapcore.InfoLevel
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
		}
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.EncoderConfig.TimeKey = "@timestamp"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.Sampling = nil
	// Errors are sentences that say what happened and what to do; a Go
	// stack trace under each would only bury them.
	cfg.DisableStacktrace = true
	return cfg.Build()
}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Check reports whether a dependency is usable; nil means ready.
type Check func(ctx context.Context) error

// Server serves /metrics, /healthz and /readyz.
type Server struct {
	addr string
	reg  *prometheus.Registry
	log  *zap.Logger

	mu       sync.Mutex
	checks   map[string]Check
	handlers map[string]http.Handler // more endpoints, such as the shipper's /files
}

// NewServer returns a server for addr; it listens when Run is called.
func NewServer(addr string, reg *prometheus.Registry, log *zap.Logger) *Server {
	return &Server{addr: addr, reg: reg, log: log, checks: map[string]Check{}, handlers: map[string]http.Handler{}}
}

// Handle serves h at path (an exact path such as "/files"), replacing the
// handler added there before: a process that builds its pipeline again on
// a configuration reload adds the new pipeline's.
func (s *Server) Handle(path string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[path] = h
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.handlers[r.URL.Path]
	s.mu.Unlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// AddCheck adds a readiness check; /readyz fails while any check fails.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", s.readyz)
	mux.HandleFunc("/", s.handle)
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	s.mu.Lock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	checks := make(map[string]Check, len(s.checks))
	for n, c := range s.checks {
		checks[n] = c
	}
	s.mu.Unlock()
	sort.Strings(names)
	var failed []string
	for _, n := range names {
		if err := checks[n](ctx); err != nil {
			failed = append(failed, n+": "+err.Error())
		}
	}
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n" + strings.Join(failed, "\n") + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// Run listens and serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("http.listen %s: %w", s.addr, err)
	}
	return s.serve(ctx, newLimitListener(ln, maxConns), idleTimeout)
}

// serve serves on ln until ctx is done, closing connections idle for idle.
func (s *Server) serve(ctx context.Context, ln net.Listener, idle time.Duration) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idle,
		// Requests end with ctx: a stream such as /tap does not hold up
		// the shutdown.
		BaseContext: func(net.Listener) context.Context { return ctx }}
	s.log.Info("serving metrics and health", zap.String("addr", ln.Addr().String()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("http server: %w", err)
	}
}

// ClearChecks removes every readiness check, for a process that replaces
// its pipeline (configuration reload) and adds the new one's checks.
func (s *Server) ClearChecks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = map[string]Check{}
}

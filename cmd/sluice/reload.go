package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/sluicelog/sluice/internal/tap"
	"github.com/sluicelog/sluice/internal/telemetry"
)

// role is a loaded and validated configuration of one command: what the
// process-wide parts need (log level, HTTP address, reload.watch), and how
// to build its pipeline.
type role struct {
	level, listen string
	watch         bool
	// preflight, if set, tries what could keep this configuration's
	// pipeline from starting (see preflight.go), while another runs.
	preflight func(context.Context, *zap.Logger) error
	build     func(prometheus.Registerer, *zap.Logger) (component, error)
	hash      [sha256.Size]byte // of the file it was loaded from
}

// loader reads and validates the configuration file at path.
type loader func(path string) (role, error)

// loadHashed is load, with the hash of the file's content.
func loadHashed(path string, load loader) (role, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return role{}, err
	}
	r, err := load(path)
	r.hash = sha256.Sum256(data)
	return r, err
}

// preflightTimeout bounds a reload's preflight: a Kafka or Elasticsearch
// of the new configuration that does not answer by then fails the reload.
const preflightTimeout = 20 * time.Second

// preflightRetry is how long, with reload.watch, a reload whose preflight
// failed waits before it is tried again: the file will not change again to
// ask for it, and nobody sends SIGHUP to a pod.
var preflightRetry = 30 * time.Second

// reloadRequest asks for a reload: on SIGHUP, or from the file watch with
// the hash of the content it saw.
type reloadRequest struct {
	trigger string
	hash    *[sha256.Size]byte // nil for SIGHUP: reload whatever the content
}

// reloadMetrics count configuration reloads.
type reloadMetrics struct {
	reloads     *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	lastTime    prometheus.Gauge
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_config_reload_total",
			Help: "Configuration reloads (SIGHUP, reload.watch), by result (success, failure)."}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_config_last_reload_success",
			Help: "1 if the last configuration reload succeeded (or none was tried), 0 if it was rejected."}),
		lastTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_config_last_reload_success_timestamp_seconds",
			Help: "Time the running configuration was loaded, Unix seconds."}),
	}
	reg.MustRegister(m.reloads, m.lastSuccess, m.lastTime)
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	m.lastSuccess.Set(1)
	m.lastTime.SetToCurrentTime()
	return m
}

func (m *reloadMetrics) result(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.lastSuccess.Set(1)
		m.lastTime.SetToCurrentTime()
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.lastSuccess.Set(0)
}

// serve runs the pipeline the configuration at path describes, with its
// HTTP endpoints, until SIGINT or SIGTERM. On SIGHUP, or when the file's
// content changes with reload.watch set, it reads the file again: an
// invalid configuration is logged and counted, and the running pipeline
// stays; so does it when the new configuration's preflight fails (its Kafka
// or Elasticsearch does not answer or refuses it, its files cannot be
// written). Otherwise the running pipeline is stopped as on SIGTERM
// (reading stops, what is in flight is delivered and acknowledged, the
// registry is written or the offsets committed), and the new one starts
// from there, so that no line is lost or sent twice. Should the new one
// still fail to build, the previous configuration starts again. The
// logger, the metrics registry (counters carry on across reloads) and the
// HTTP server stay: log.level, http.listen and reload.watch changes need a
// restart.
func serve(path string, load loader) error {
	// Registered first: by default SIGHUP would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cur, err := loadHashed(path, load)
	if err != nil {
		return err
	}
	log, err := telemetry.NewLogger(cur.level)
	if err != nil {
		return fmt.Errorf("log.level: %w", err)
	}
	defer func() { _ = log.Sync() }()
	if path := os.Getenv("SLUICE_CPUPROFILE"); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	if path := os.Getenv("SLUICE_MEMPROFILE"); path != "" {
		defer writeAllocProfile(path, log)
	}
	if path := os.Getenv("SLUICE_TRACE"); path != "" {
		stopTrace, err := startTrace(path)
		if err != nil {
			return err
		}
		defer stopTrace()
	}
	reg := telemetry.NewRegistry()
	reg.MustRegister(telemetry.BuildInfo(versionString()))
	metrics := newReloadMetrics(reg)
	pipelineReg := telemetry.Carrying(reg)
	c, err := cur.build(pipelineReg, log)
	if err != nil {
		return err
	}
	srv := telemetry.NewServer(cur.listen, reg, log)
	srv.Handle(tap.Path, tap.Default)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	g, gctx := errgroup.WithContext(ctx)
	// The HTTP server and the file watch outlive ctx until the pipeline
	// has stopped.
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	g.Go(func() error { return srv.Run(httpCtx) })
	reloads := make(chan reloadRequest, 1)
	g.Go(func() error {
		for {
			select {
			case <-httpCtx.Done():
				return nil
			case <-hup:
				offer(reloads, reloadRequest{trigger: "SIGHUP"})
			}
		}
	})
	if cur.watch {
		g.Go(func() error {
			watchFile(httpCtx, path, cur.hash, fileWatchPoll, log, func(h [sha256.Size]byte) {
				offer(reloads, reloadRequest{trigger: "configuration file changed", hash: &h})
			})
			return nil
		})
	}
	g.Go(func() error {
		defer stopHTTP()
		for {
			srv.ClearChecks()
			c.AddChecks(srv)
			next, err := runUntilReload(gctx, c, reloads, path, load, cur, log, metrics)
			if next == nil {
				if ctx.Err() != nil && errors.Is(err, context.Canceled) {
					// SIGTERM while waiting for a server at start (say,
					// installing the index template): a stop asked for.
					return nil
				}
				return err
			}
			if err != nil {
				log.Error("stopping the running pipeline for the reload", zap.Error(err))
			}
			nc, err := next.build(pipelineReg, log)
			if err != nil {
				log.Error("configuration reload failed: cannot start the new configuration; starting the previous one again",
					zap.String("path", path), zap.Error(err))
				metrics.result(false)
				if c, err = cur.build(pipelineReg, log); err != nil {
					return fmt.Errorf("starting the previous configuration again: %w", err)
				}
				continue
			}
			log.Info("configuration reloaded", zap.String("path", path))
			metrics.result(true)
			c, cur = nc, *next
		}
	})
	return g.Wait()
}

// offer queues r unless a reload is already waiting, which will read the
// file as it is then.
func offer(reloads chan<- reloadRequest, r reloadRequest) {
	select {
	case reloads <- r:
	default:
	}
}

// runUntilReload runs c until ctx ends or it fails, and returns its error
// with a nil role; or until a reload brings a valid configuration whose
// preflight passes: then it stops c gracefully and returns the new role
// with c's error from stopping. Other configurations are rejected and c
// keeps running.
func runUntilReload(ctx context.Context, c component, reloads <-chan reloadRequest, path string, load loader, cur role,
	log *zap.Logger, metrics *reloadMetrics) (*role, error) {
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	// A failed preflight's next try, with reload.watch, and the content it
	// was for.
	var retry <-chan time.Time
	var retryHash [sha256.Size]byte
	for {
		var req reloadRequest
		select {
		case err := <-done:
			return nil, err
		case req = <-reloads:
		case <-retry:
			req = reloadRequest{trigger: "retrying the configuration whose preflight failed", hash: &retryHash}
		}
		retry = nil
		if req.hash != nil && *req.hash == cur.hash {
			continue // the running configuration's content: reloaded on SIGHUP already
		}
		log.Info("reloading configuration", zap.String("path", path), zap.String("trigger", req.trigger))
		next, err := loadHashed(path, load)
		if err != nil {
			log.Error("configuration reload rejected; the running configuration stays", zap.String("path", path), zap.Error(err))
			metrics.result(false)
			continue
		}
		if next.preflight != nil {
			pctx, cancel := context.WithTimeout(ctx, preflightTimeout)
			err = next.preflight(pctx, log)
			cancel()
			if ctx.Err() != nil {
				continue // SIGTERM meanwhile: c is stopping
			}
			if err != nil {
				log.Error("configuration reload failed: the new configuration cannot start; the running pipeline stays",
					zap.String("path", path), zap.Error(err))
				metrics.result(false)
				if cur.watch {
					// Its Kafka or Elasticsearch may be back soon.
					retry, retryHash = time.After(preflightRetry), next.hash
					log.Info("reload.watch: trying the new configuration again later", zap.Duration("in", preflightRetry))
				}
				continue
			}
		}
		if next.listen != cur.listen {
			log.Warn("http.listen changes need a restart; keeping the current address", zap.String("listen", cur.listen))
		}
		if next.level != cur.level {
			log.Warn("log.level changes need a restart; keeping the current level", zap.String("level", cur.level))
		}
		if next.watch != cur.watch {
			log.Warn("reload.watch changes need a restart; keeping the current setting", zap.Bool("watch", cur.watch))
		}
		start := time.Now()
		stopRun()
		err = <-done
		log.Info("running pipeline stopped for the reload", zap.Duration("took", time.Since(start)))
		if ctx.Err() != nil {
			return nil, err // SIGTERM meanwhile
		}
		return &next, err
	}
}

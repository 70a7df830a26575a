package main

import (
	"context"
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
// process-wide parts need (log level, HTTP address), and how to build its
// pipeline.
type role struct {
	level, listen string
	build         func(prometheus.Registerer, *zap.Logger) (component, error)
}

// loader reads and validates the configuration file at path.
type loader func(path string) (role, error)

// reloadMetrics count configuration reloads.
type reloadMetrics struct {
	reloads     *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	lastTime    prometheus.Gauge
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_config_reload_total",
			Help: "Configuration reloads on SIGHUP, by result (success, failure)."}, []string{"result"}),
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
// HTTP endpoints, until SIGINT or SIGTERM. On SIGHUP it reads the file
// again: an invalid configuration is logged and counted, and the running
// pipeline stays; a valid one replaces it. The running pipeline is stopped
// as on SIGTERM (reading stops, what is in flight is delivered and
// acknowledged, the registry is written or the offsets committed), and the
// new one starts from there, so that no line is lost or sent twice. The
// logger, the metrics registry and the HTTP server stay: log.level and
// http.listen changes need a restart.
func serve(path string, load loader) error {
	// Registered first: by default SIGHUP would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cur, err := load(path)
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
	pipelineReg := telemetry.Replacing(reg)
	c, err := cur.build(pipelineReg, log)
	if err != nil {
		return err
	}
	srv := telemetry.NewServer(cur.listen, reg, log)
	srv.Handle(tap.Path, tap.Default)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	g, gctx := errgroup.WithContext(ctx)
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	g.Go(func() error { return srv.Run(httpCtx) })
	g.Go(func() error {
		defer stopHTTP()
		for {
			srv.ClearChecks()
			c.AddChecks(srv)
			next, err := runUntilReload(gctx, c, hup, path, load, cur, log, metrics)
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

// runUntilReload runs c until ctx ends or it fails, and returns its error
// with a nil role; or until SIGHUP brings a valid configuration: then it
// stops c gracefully and returns the new role with c's error from stopping.
// Invalid configurations are rejected and c keeps running.
func runUntilReload(ctx context.Context, c component, hup <-chan os.Signal, path string, load loader, cur role,
	log *zap.Logger, metrics *reloadMetrics) (*role, error) {
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	for {
		select {
		case err := <-done:
			return nil, err
		case <-hup:
		}
		log.Info("SIGHUP: reloading configuration", zap.String("path", path))
		next, err := load(path)
		if err != nil {
			log.Error("configuration reload rejected; the running configuration stays", zap.String("path", path), zap.Error(err))
			metrics.result(false)
			continue
		}
		if next.listen != cur.listen {
			log.Warn("http.listen changes need a restart; keeping the current address", zap.String("listen", cur.listen))
		}
		if next.level != cur.level {
			log.Warn("log.level changes need a restart; keeping the current level", zap.String("level", cur.level))
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

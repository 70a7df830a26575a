package main

import (
	"context"
	"io"
	"net"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sluicelog/sluice/internal/tap"
	"github.com/sluicelog/sluice/shipper"
)

// tapFlags are sluice tap's flags.
type tapFlags struct {
	addr         string
	stage        string
	types, servs string
	where        whereFlag
	rate         float64
	limit        int
}

// whereFlag collects repeated -where field=value conditions.
type whereFlag []tap.Match

func (w *whereFlag) String() string {
	var s []string
	for _, m := range *w {
		s = append(s, m.String())
	}
	return strings.Join(s, " ")
}

func (w *whereFlag) Set(v string) error {
	m, err := tap.ParseMatch(v)
	if err != nil {
		return err
	}
	*w = append(*w, m)
	return nil
}

// run streams the tap to stdout until the limit, SIGINT or SIGTERM. The
// process is found at -addr, or at the http.listen of the configuration
// at path.
func (f tapFlags) run(path string, stdout io.Writer) error {
	addr := f.addr
	if path != "" {
		listen, err := listenOf(path)
		if err != nil {
			return err
		}
		addr = listen
	}
	if addr == "" {
		addr = shipper.DefaultListen
	}
	// Through the query, as the process reads it: the same checks, and
	// comma-separated types and services split.
	filter, err := tap.ParseQuery(tap.Filter{Stage: f.stage, Types: []string{f.types}, Services: []string{f.servs},
		Where: f.where, Rate: f.rate, Limit: f.limit}.Query())
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return tap.Read(ctx, dialable(addr), filter, stdout)
}

// listenOf returns the http.listen of the shipper, aggregator or run
// configuration at path.
func listenOf(path string) (string, error) {
	kind, _, err := check(path)
	if err != nil {
		return "", err
	}
	switch kind {
	case "shipper":
		cfg, err := loadShipper(path)
		return cfg.HTTP.Listen, err
	case "aggregator":
		cfg, err := loadAggregator(path)
		return cfg.HTTP.Listen, err
	default:
		cfg, err := loadRun(path)
		return cfg.HTTP.Listen, err
	}
}

// dialable turns a listen address into one to connect to: a process
// listening on every address (":9600", "0.0.0.0:9600") is reached on the
// loopback, where the tap serves.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

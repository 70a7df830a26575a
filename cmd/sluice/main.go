// Command sluice ships log files to Kafka (`sluice ship`) and indexes them
// from Kafka into Elasticsearch (`sluice aggregate`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/telemetry"
	"github.com/sluicelog/sluice/runner"
	"github.com/sluicelog/sluice/shipper"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `sluice: log shipping and aggregation

Usage:
  sluice ship -c FILE        tail files into Kafka
  sluice aggregate -c FILE   index Kafka records into Elasticsearch
  sluice run -c FILE         tail files and index them in one process, without
                             Kafka: into Elasticsearch, an NDJSON file or stdout
  sluice check -c FILE       validate a shipper, aggregator or run config
  sluice setup -c FILE       install the index template in Elasticsearch and,
                             with kibana.url set, the dashboards in Kibana
  sluice replay -c FILE -topic TOPIC [-from TIME] [-to TIME] [-idle-timeout 30s]
                             send a topic's records (the dead-letter topic after
                             a mapping fix, or a time range of a source topic)
                             through the aggregator's pipeline again
  sluice test -c FILE [-dir DIR] [-update]
                             run sample lines through the aggregator's parsers,
                             GeoIP and pipelines and compare with the expected
                             documents (no Kafka or Elasticsearch needed)
  sluice reconcile -c SHIPPER -aggregator AGGREGATOR [-index PATTERN]
                             on a node: list the acknowledged lines of the
                             files in the shipper's registry that are neither
                             in Elasticsearch nor in the dead-letter topic
  sluice tap [-c FILE | -addr HOST:PORT] -stage lines|documents|dead_letters
             [-type T] [-service S] [-where FIELD=VALUE] [-rate R] [-limit N]
                             show, live, the lines, documents or dead letters
                             passing a running process
  sluice version             print the version

ship, aggregate and run reload their configuration file on SIGHUP, and
when it changes with reload.watch: true.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "sluice", versionString())
		return 0
	case "help", "-h", "--help":
		if len(rest) == 0 {
			fmt.Fprint(stdout, usage)
			return 0
		}
		if _, ok := commands[rest[0]]; !ok || len(rest) > 1 {
			fmt.Fprintf(stderr, "sluice help: unknown command %q\n\n%s", strings.Join(rest, " "), usage)
			return 2
		}
		fs, _ := newFlags(rest[0], stderr)
		printHelp(stdout, rest[0], fs)
		return 0
	case "ship", "aggregate", "run", "check", "replay", "test", "setup", "reconcile", "tap":
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	fs, f := newFlags(cmd, stderr)
	path, replay, tests, rec := &f.path, &f.replay, &f.tests, &f.reconcile
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout, cmd, fs)
			return 0
		}
		fmt.Fprintf(stderr, "see 'sluice help %s'\n", cmd)
		return 2
	}
	args = fs.Args()
	if cmd == "check" && *path == "" && len(args) > 0 {
		*path, args = args[0], args[1:] // sluice check FILE, as -c FILE
	}
	if len(args) > 0 {
		fmt.Fprintf(stderr, "sluice %s: unexpected argument %q; the configuration file is given with -c FILE\n", cmd, args[0])
		return 2
	}
	if cmd == "tap" {
		if err := f.tap.run(*path, stdout); err != nil {
			fmt.Fprintf(stderr, "sluice tap: %v\n", err)
			return 1
		}
		return 0
	}
	if *path == "" {
		fmt.Fprintf(stderr, "sluice %s: -c FILE is required\n", cmd)
		return 2
	}
	var err error
	switch cmd {
	case "check":
		var kind string
		var warnings []string
		kind, warnings, err = check(*path)
		for _, w := range warnings {
			fmt.Fprintf(stderr, "sluice check: %s: warning: %s\n", *path, w)
		}
		if err == nil {
			fmt.Fprintf(stdout, "%s: valid %s configuration\n", *path, kind)
		}
	case "ship":
		err = ship(*path)
	case "aggregate":
		err = aggregate(*path)
	case "test":
		err = tests.run(*path, stdout)
	case "setup":
		err = setup(*path, stdout)
	case "run":
		err = runSingle(*path)
	case "reconcile":
		err = rec.run(*path, stdout)
	case "replay":
		var n int
		n, err = replay.run(*path)
		var idle *aggregator.IdleError
		if err == nil || errors.As(err, &idle) {
			fmt.Fprintf(stdout, "replayed %d records from %s\n", n, replay.topic)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice %s: %s: %v\n", cmd, *path, err)
		return 1
	}
	return 0
}

// startCPUProfile writes a CPU profile to path until the returned function
// is called; for benchmarks (SLUICE_CPUPROFILE).
func startCPUProfile(path string) (func(), error) {
	return startRecording("SLUICE_CPUPROFILE", path, pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// writeAllocProfile writes the allocations made since the start to path;
// for benchmarks (SLUICE_MEMPROFILE, written at exit).
func writeAllocProfile(path string, log *zap.Logger) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		log.Error("SLUICE_MEMPROFILE: writing the allocation profile", zap.String("path", path), zap.Error(err))
	}
}

// startTrace writes an execution trace to path until the returned function
// is called; for benchmarks (SLUICE_TRACE).
func startTrace(path string) (func(), error) {
	return startRecording("SLUICE_TRACE", path, trace.Start, trace.Stop)
}

// startRecording creates path and runs start on it; the returned function
// stops and closes. name (the environment variable) prefixes errors.
func startRecording(name, path string, start func(io.Writer) error, stop func()) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return func() { stop(); f.Close() }, nil
}

func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}

// check loads a config as whichever role its keys say it is for, and
// returns what is valid but likely wrong as warnings.
func check(path string) (kind string, warnings []string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	keys, err := config.Keys(data)
	if err != nil {
		return "", nil, err
	}
	has := func(k string) bool { return slices.Contains(keys, k) }
	switch {
	case has("output") || has("queue") || has("dead_letter_file") || (has("inputs") || has("registry")) && has("elasticsearch"):
		cfg, err := loadRun(path)
		if err != nil {
			return "run", nil, err
		}
		return "run", cfg.Config.Overlaps(), nil
	case has("inputs") || has("registry"):
		cfg, err := loadShipper(path)
		if err != nil {
			return "shipper", nil, err
		}
		return "shipper", cfg.Overlaps(), nil
	case has("elasticsearch"):
		_, err := loadAggregator(path)
		return "aggregator", nil, err
	}
	return "", nil, errors.New("neither a shipper config (it has inputs and registry), an aggregator config (it has elasticsearch) nor a run config (it has inputs, registry and output)")
}

func loadRun(path string) (runner.Config, error) {
	var cfg runner.Config
	if err := config.Load(path, &cfg); err != nil {
		return cfg, err
	}
	cfg.SetDefaults()
	return cfg, cfg.Validate()
}

func loadShipper(path string) (shipper.Config, error) {
	var cfg shipper.Config
	if err := config.Load(path, &cfg); err != nil {
		return cfg, err
	}
	cfg.SetDefaults()
	return cfg, cfg.Validate()
}

func loadAggregator(path string) (aggregator.Config, error) {
	var cfg aggregator.Config
	if err := config.Load(path, &cfg); err != nil {
		return cfg, err
	}
	cfg.SetDefaults()
	return cfg, cfg.Validate()
}

type replayFlags struct {
	topic, from, to string
	idle            time.Duration
}

// run replays per the flags with the aggregator config at path.
func (f replayFlags) run(path string) (int, error) {
	if f.topic == "" {
		return 0, errors.New("-topic is required")
	}
	if f.idle < 0 {
		return 0, errors.New("-idle-timeout must not be negative")
	}
	opts := aggregator.ReplayOptions{Topic: f.topic, IdleTimeout: f.idle}
	for _, t := range []struct {
		flag, value string
		out         *time.Time
	}{{"-from", f.from, &opts.From}, {"-to", f.to, &opts.To}} {
		if t.value == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.value)
		if err != nil {
			return 0, fmt.Errorf("%s %q: write the time like 2026-11-25T10:00:00Z", t.flag, t.value)
		}
		*t.out = v
	}
	cfg, err := loadAggregator(path)
	if err != nil {
		return 0, err
	}
	log, err := telemetry.NewLogger(cfg.Log.Level)
	if err != nil {
		return 0, fmt.Errorf("log.level: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stats, err := aggregator.Replay(ctx, cfg, opts, log)
	return stats.Records, err
}

// component is a pipeline process: shipper, aggregator or both.
type component interface {
	Run(ctx context.Context) error
	AddChecks(*telemetry.Server)
}

func ship(path string) error {
	return serve(path, func(path string) (role, error) {
		cfg, err := loadShipper(path)
		return role{level: cfg.Log.Level, listen: cfg.HTTP.Listen, watch: cfg.Reload.Watch, preflight: shipperPreflight(cfg),
			build: func(reg prometheus.Registerer, log *zap.Logger) (component, error) {
				return shipper.New(cfg, reg, log)
			}}, err
	})
}

func aggregate(path string) error {
	return serve(path, func(path string) (role, error) {
		cfg, err := loadAggregator(path)
		return role{level: cfg.Log.Level, listen: cfg.HTTP.Listen, watch: cfg.Reload.Watch, preflight: aggregatorPreflight(cfg),
			build: func(reg prometheus.Registerer, log *zap.Logger) (component, error) {
				a, err := aggregator.New(cfg, reg, log)
				if err == nil {
					defaulted := cfg
					defaulted.SetDefaults()
					setMemoryLimit(defaulted.Memory().GoLimit, log)
				}
				return a, err
			}}, err
	})
}

func runSingle(path string) error {
	return serve(path, func(path string) (role, error) {
		cfg, err := loadRun(path)
		return role{level: cfg.Log.Level, listen: cfg.HTTP.Listen, watch: cfg.Reload.Watch, preflight: runPreflight(cfg),
			build: func(reg prometheus.Registerer, log *zap.Logger) (component, error) {
				r, err := runner.New(cfg, reg, log)
				if err == nil {
					defaulted := cfg
					defaulted.SetDefaults()
					setMemoryLimit(defaulted.GoMemoryLimit(), log)
				}
				return r, err
			}}, err
	})
}

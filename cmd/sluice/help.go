package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// command is what `sluice help CMD` and `sluice CMD --help` say of a
// command, besides its flags.
type command struct {
	synopsis string // the command line
	about    string // what it does, a paragraph
	example  string
}

var commands = map[string]command{
	"ship": {"sluice ship -c FILE",
		"Tails the files of the configured inputs and produces every line to Kafka. File offsets are kept in a registry that moves only once Kafka has acknowledged the lines, so restarts, rotation and Kafka outages lose nothing. Serves /metrics, /healthz, /readyz and /tap on http.listen; reloads FILE on SIGHUP (and when it changes, with reload.watch: true); SIGTERM delivers what is in flight and exits 0.",
		"sluice ship -c /etc/sluice/shipper.yaml"},
	"aggregate": {"sluice aggregate -c FILE",
		"Consumes the shippers' topics as a member of a consumer group, parses each line by its document type and bulk-indexes the documents into Elasticsearch. Offsets are committed only once Elasticsearch acknowledged the documents; rejected ones go to the dead-letter topic. Reloads FILE on SIGHUP (and when it changes, with reload.watch: true).",
		"sluice aggregate -c /etc/sluice/aggregator.yaml"},
	"run": {"sluice run -c FILE",
		"Ship and aggregate in one process, without Kafka: lines go through an in-process queue to Elasticsearch, an NDJSON file or standard output.",
		"sluice run -c deploy/local/run.yaml"},
	"check": {"sluice check [-c] FILE",
		"Validates a shipper, aggregator or run configuration without starting anything: unknown keys, bad values, placeholders that would render \"unknown\", misspelt document types, unreadable certificates and GeoIP databases. Exit 0 when valid (warnings go to standard error), 1 with the key and the fix when not.",
		"sluice check /etc/sluice/shipper.yaml"},
	"setup": {"sluice setup -c FILE",
		"Installs the index template in Elasticsearch and, with kibana.url set, imports the dashboards into Kibana, using an aggregator configuration.",
		"sluice setup -c /etc/sluice/aggregator.yaml"},
	"replay": {"sluice replay -c FILE -topic TOPIC [-from TIME] [-to TIME] [-idle-timeout D]",
		"Sends a topic's records through the aggregator's pipeline again: the dead-letter topic after a mapping fix, or a time range of a source topic. Reads to the topic's end as it is when the replay starts, commits nothing; document ids make it idempotent.",
		"sluice replay -c aggregator.yaml -topic sluice-dead-letter -from 2026-11-25T10:00:00Z"},
	"reconcile": {"sluice reconcile -c SHIPPER -aggregator AGGREGATOR [-index PATTERN] [-timeout D]",
		"Proves that nothing was lost, on a node: for each file in the shipper's registry still at its path, reads the lines before its acknowledged offset and looks up their documents (by id: node, file id, offset) in Elasticsearch and in the dead-letter topic. Prints the files with lines in neither and their offsets, and exits 1 if there are any. Lines a pipeline dropped count as missing; files of formats cri and docker, rotated away or truncated are skipped (listed).",
		"sluice reconcile -c /etc/sluice/shipper.yaml -aggregator aggregator.yaml -index 'logs-*'"},
	"tap": {"sluice tap [-c FILE | -addr HOST:PORT] -stage STAGE [-type T] [-service S] [-where FIELD=VALUE] [-rate R] [-limit N]",
		"Shows, live, the events passing a stage of a running ship, aggregate or run process, one JSON object a line: lines as the shipper read them (stage lines, with path and offset), documents as the aggregator built them (documents, with their index) and dead letters as they are written (dead_letters, with status and reason). Filters by document type, service and fields (-where, repeatable, all must hold), and samples (-rate 0.01 takes one matching event in a hundred) up to -limit events. Reads the process's http.listen (GET /tap, served to clients on the same host only); costs the process nothing while nobody taps.",
		"sluice tap -c /etc/sluice/aggregator.yaml -stage documents -type nginx -service checkout -where log.level=error -limit 20"},
	"test": {"sluice test -c FILE [-dir DIR] [-update]",
		"Runs sample lines through the aggregator's parsers, GeoIP and pipelines (no Kafka or Elasticsearch) and compares the documents with the expected ones; exit 1 with a diff when they differ.",
		"sluice test -c aggregator.yaml -dir pipeline-tests"},
}

// cmdFlags are the values of a command's flags.
type cmdFlags struct {
	path      string
	replay    replayFlags
	tests     testFlags
	reconcile reconcileFlags
	tap       tapFlags
}

// newFlags returns the flag set of cmd; parse errors are written to
// stderr, help is not (printHelp writes it to standard output).
func newFlags(cmd string, stderr io.Writer) (*flag.FlagSet, *cmdFlags) {
	f := &cmdFlags{}
	fs := flag.NewFlagSet("sluice "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	fs.StringVar(&f.path, "c", "", "configuration file (YAML)")
	switch cmd {
	case "replay":
		fs.StringVar(&f.replay.topic, "topic", "", "topic to replay (required)")
		fs.StringVar(&f.replay.from, "from", "", "replay records from this time (RFC 3339)")
		fs.StringVar(&f.replay.to, "to", "", "replay records up to this time (RFC 3339)")
		fs.DurationVar(&f.replay.idle, "idle-timeout", 30*time.Second,
			"give up when Kafka returns no record for this long before the topic's end is read (0: wait for ever)")
	case "reconcile":
		fs.StringVar(&f.reconcile.aggregator, "aggregator", "", "aggregator configuration: where Elasticsearch and the dead-letter topic are (required)")
		fs.StringVar(&f.reconcile.index, "index", "logs-*", "indices to look for the documents in")
		fs.DurationVar(&f.reconcile.timeout, "timeout", 10*time.Minute, "give up after this long")
	case "tap":
		fs.StringVar(&f.tap.addr, "addr", "", "host:port of the process's http.listen (default: the configuration's, else 127.0.0.1:9600)")
		fs.StringVar(&f.tap.stage, "stage", "", "lines, documents or dead_letters (required)")
		fs.StringVar(&f.tap.types, "type", "", "only these document types (comma-separated)")
		fs.StringVar(&f.tap.servs, "service", "", "only these services (comma-separated)")
		fs.Var(&f.tap.where, "where", "only events whose FIELD is VALUE, e.g. log.level=error (repeatable)")
		fs.Float64Var(&f.tap.rate, "rate", 1, "share of the matching events to show, e.g. 0.01")
		fs.IntVar(&f.tap.limit, "limit", 0, "stop after this many events (0: until interrupted)")
	case "test":
		fs.StringVar(&f.tests.dir, "dir", "", "directory of test cases (default: the config's tests key, else pipeline-tests next to the config)")
		fs.BoolVar(&f.tests.update, "update", false, "rewrite the expected documents from what the pipeline builds")
	}
	return fs, f
}

// printHelp writes a command's synopsis, description, flags and example.
func printHelp(w io.Writer, cmd string, fs *flag.FlagSet) {
	c := commands[cmd]
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags:\n", c.synopsis, wrap(c.about, 78))
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nExample:\n  %s\n", c.example)
}

// wrap breaks text into lines of at most width bytes at spaces.
func wrap(text string, width int) string {
	var b strings.Builder
	line := 0
	for i, word := range strings.Fields(text) {
		if i > 0 && line+1+len(word) > width {
			b.WriteByte('\n')
			line = 0
		} else if i > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(word)
		line += len(word)
	}
	return b.String()
}

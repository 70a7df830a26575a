package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/testenv"
)

// scenario is one fault. The harness starts the aggregators and the
// shipper, writes lines for a warm-up, runs fault (which returns when the
// fault is over), stops writing, and waits until every line is accounted
// for.
type scenario struct {
	name  string
	about string
	// aggregators in the group (1 when 0).
	aggregators int
	// proxy puts the harness's Elasticsearch proxy between the aggregators
	// and es-1.
	proxy bool
	// before runs before any sluice process starts; setup once the
	// aggregators run and before any line is written.
	before func(r *run) error
	setup  func(r *run) error
	fault  func(r *run) error
	// noWarmup: the fault starts with the first line (else after 10 s).
	noWarmup bool
	// rejects: dead-lettered lines count as delivered (the scenario makes
	// Elasticsearch refuse them). Elsewhere a dead letter is a line lost.
	rejects bool
	// tail: a tailing scenario (tail_test.go) writes one file of its own
	// instead of the services' lines, and every line's content is checked.
	tail *tailSpec
}

var services = []string{"checkout", "billing", "search"}

// scenarios, in the campaign's order. Durations are at CHAOS_SCALE=1.
var scenarios = []scenario{
	{
		name:  "leader-kill",
		about: "SIGKILL the broker leading partition 0 of the topic; back after 15 s",
		fault: func(r *run) error {
			leader, err := r.leader(0)
			if err != nil {
				return err
			}
			node := fmt.Sprintf("kafka-%d", leader)
			r.note("killed %s", node)
			if err := r.e.cluster("kill", node); err != nil {
				return err
			}
			r.sleep(15 * time.Second)
			r.lift()
			if err := r.e.cluster("start", node); err != nil {
				return err
			}
			return r.waitISR()
		},
	},
	{
		name:  "rolling-restart",
		about: "SIGTERM and restart each broker in turn, waiting for full ISR in between",
		fault: func(r *run) error {
			for n := 1; n <= 3; n++ {
				node := fmt.Sprintf("kafka-%d", n)
				if err := r.e.cluster("stop", node); err != nil {
					return err
				}
				r.sleep(5 * time.Second)
				r.lift() // the last broker's start ends the fault
				if err := r.e.cluster("start", node); err != nil {
					return err
				}
				if err := r.waitISR(); err != nil {
					return err
				}
			}
			return nil
		},
	},
	{
		name:  "two-brokers-down",
		about: "SIGKILL two of three brokers (below min.insync.replicas, quorum lost) for 60 s",
		fault: func(r *run) error {
			for _, node := range []string{"kafka-2", "kafka-3"} {
				if err := r.e.cluster("kill", node); err != nil {
					return err
				}
			}
			r.sleep(60 * time.Second)
			r.lift()
			for _, node := range []string{"kafka-2", "kafka-3"} {
				if err := r.e.cluster("start", node); err != nil {
					return err
				}
			}
			return r.waitISR()
		},
	},
	{
		name:  "agg-sigstop",
		about: "SIGSTOP the only aggregator for the session timeout (10 s) + 10 s, then SIGCONT",
		fault: func(r *run) error {
			return r.pauseAggregator(0)
		},
	},
	{
		name:        "agg-sigstop-pair",
		about:       "two aggregators; SIGSTOP one past the session timeout (the other takes over), then SIGCONT",
		aggregators: 2,
		fault: func(r *run) error {
			return r.pauseAggregator(0)
		},
	},
	{
		name:        "es-slow-rebalance",
		about:       "Elasticsearch (through a proxy) 2 s slow and 30% 503 for 40 s while a third aggregator joins and one leaves",
		aggregators: 2,
		proxy:       true,
		fault: func(r *run) error {
			r.esProxy.set(2*time.Second, 0.3)
			r.sleep(5 * time.Second)
			r.startAggregator()
			r.sleep(15 * time.Second)
			if err := r.aggs[0].stop(); err != nil {
				r.note("first aggregator's SIGTERM during the fault: %v", err)
			}
			r.sleep(20 * time.Second)
			r.esProxy.set(0, 0)
			r.lift()
			return nil
		},
	},
	{
		name:  "es-kill",
		about: "SIGKILL Elasticsearch node es-2 (data) for 20 s, then restart it",
		fault: func(r *run) error {
			if err := r.e.cluster("kill", "es-2"); err != nil {
				return err
			}
			r.sleep(20 * time.Second)
			r.lift()
			return r.e.cluster("start", "es-2")
		},
	},
	{
		name:     "red-index",
		about:    "billing's index red (shards unassignable) from the start for 120 s, then allocated; checkout and search must flow",
		noWarmup: true,
		setup: func(r *run) error {
			// The template is installed when the aggregator starts: create
			// the index after it, so that the template's mappings apply.
			if err := r.waitTemplate(); err != nil {
				return err
			}
			_, err := r.e.esDo(r.ctx, http.MethodPut, "/"+r.index("billing"), map[string]any{
				"settings": map[string]any{"index.routing.allocation.require._name": "no-such-node"},
			}, nil)
			return err
		},
		fault: func(r *run) error {
			others := r.index("checkout") + "," + r.index("search")
			r.sleep(10 * time.Second)
			t0, c0 := time.Now(), r.e.count(r.ctx, others)
			w0 := r.w.written("checkout") + r.w.written("search")
			r.sleep(110 * time.Second)
			t1, c1 := time.Now(), r.e.count(r.ctx, others)
			w1 := r.w.written("checkout") + r.w.written("search")
			secs := t1.Sub(t0).Seconds()
			indexed, written := float64(c1-c0)/secs, float64(w1-w0)/secs
			r.note("while red, checkout+search indexed %.0f/s, written %.0f/s", indexed, written)
			_, err := r.e.esDo(r.ctx, http.MethodPut, "/"+r.index("billing")+"/_settings", map[string]any{
				"index.routing.allocation.require._name": nil,
			}, nil)
			r.lift()
			if err == nil && indexed < written/2 {
				err = fmt.Errorf("the other services stalled behind the red index (%.0f/s indexed, %.0f/s written)", indexed, written)
			}
			return err
		},
	},
	{
		name:  "write-block",
		about: "index.blocks.write on billing's index for 60 s, then lifted",
		fault: func(r *run) error {
			if _, err := r.e.esDo(r.ctx, http.MethodPut, "/"+r.index("billing")+"/_settings",
				map[string]any{"index.blocks.write": true}, nil); err != nil {
				return err
			}
			r.sleep(60 * time.Second)
			_, err := r.e.esDo(r.ctx, http.MethodPut, "/"+r.index("billing")+"/_settings",
				map[string]any{"index.blocks.write": false}, nil)
			r.lift()
			return err
		},
	},
	{
		name:  "registry-full",
		about: "registry on a 64 KiB tmpfs filled up; new files; shipper SIGKILLed and restarted twice; then space freed",
		before: func(r *run) error {
			return r.mountRegistry()
		},
		fault: func(r *run) error {
			filler := filepath.Join(r.registry, "filler")
			if err := fill(filler); err != nil {
				return err
			}
			for range 2 {
				r.w.newFiles()
				r.sleep(8 * time.Second)
				r.ship.kill()
				r.ship = r.startSluice("ship", r.shipCfg)
				r.sleep(5 * time.Second)
			}
			r.lift()
			return os.Remove(filler)
		},
	},
	{
		name:  "shipper-kill-5",
		about: "SIGKILL the shipper 5 times, 1-4 s apart, restarting it each time",
		fault: func(r *run) error {
			for range 5 {
				r.sleep(time.Duration(1000+rand.IntN(3000)) * time.Millisecond)
				r.ship.kill()
				r.ship = r.startSluice("ship", r.shipCfg)
			}
			return nil
		},
	},
}

// result is one row of the table.
type result struct {
	name                            string
	written, indexed, dead, missing int
	duplicates, strays              int
	corrupt                         int           // tailing scenarios: documents whose content is not their line's
	unclean                         bool          // a process did not exit cleanly on SIGTERM
	recovery                        time.Duration // -1: never
	peakShip, peakAgg               int64
	pass                            bool
	notes                           []string
}

var (
	resultsMu sync.Mutex
	results   []result
)

// TestChaos runs the fault campaign: every scenario, or those CHAOS_RUN
// names (comma-separated, or a regular expression), one after the other.
func TestChaos(t *testing.T) {
	if os.Getenv("SLUICE_CHAOS") != "1" {
		t.Skip("the fault campaign runs with SLUICE_CHAOS=1 (make chaos)")
	}
	e := loadEnv(t)
	sel := os.Getenv("CHAOS_RUN")
	var match func(string) bool
	switch {
	case sel == "":
		match = func(string) bool { return true }
	case strings.Contains(sel, ","):
		names := strings.Split(sel, ",")
		match = func(n string) bool { return slices.Contains(names, n) }
	default:
		re, err := regexp.Compile("^(" + sel + ")$")
		if err != nil {
			t.Fatalf("CHAOS_RUN=%q: %v", sel, err)
		}
		match = re.MatchString
	}
	ran := 0
	for _, sc := range scenarios {
		if !match(sc.name) {
			continue
		}
		ran++
		t.Run(sc.name, func(t *testing.T) { runScenario(t, e, sc) })
	}
	if ran == 0 {
		var names []string
		for _, sc := range scenarios {
			names = append(names, sc.name)
		}
		t.Fatalf("CHAOS_RUN=%q matches no scenario: %s", sel, strings.Join(names, ", "))
	}
	table := renderTable(e)
	fmt.Print("\n" + table)
	if err := os.MkdirAll(filepath.Dir(e.out), 0o755); err == nil {
		err = os.WriteFile(e.out, []byte(table), 0o644)
		if err != nil {
			t.Logf("writing %s: %v", e.out, err)
		} else {
			t.Logf("table written to %s", e.out)
		}
	}
}

// run is one scenario's run.
type run struct {
	t        *testing.T
	e        *env
	ctx      context.Context
	sc       scenario
	prefix   string
	dir      string
	logs     string
	registry string
	shipCfg  string
	aggCfg   string
	kafka    *kgo.Client
	esProxy  *esProxy
	w        *writer
	tw       *tailWriter // tailing scenarios' writer, instead of w
	shipHTTP string      // the shipper's /metrics address
	ship     *proc
	aggs     []*proc
	procs    []*proc
	nproc    int
	lifted   time.Time // when the fault was lifted; recovery is counted from here
	res      result
}

func (r *run) note(format string, args ...any) {
	r.res.notes = append(r.res.notes, fmt.Sprintf(format, args...))
	r.t.Logf(format, args...)
}

// lift marks the end of the fault (a node restarted, a block removed):
// recovery time counts from the last call. A fault that does not call it
// ends when its function returns.
func (r *run) lift() { r.lifted = time.Now() }

// sleep waits a fault's duration, scaled by CHAOS_SCALE.
func (r *run) sleep(base time.Duration) { time.Sleep(r.e.d(base)) }

func (r *run) topic() string           { return r.prefix + "-service" }
func (r *run) deadLetterTopic() string { return r.prefix + "-dead-letter" }
func (r *run) index(svc string) string { return r.prefix + "-service-" + svc + "-prod" }

func runScenario(t *testing.T, e *env, sc scenario) {
	ctx := t.Context()
	r := &run{t: t, e: e, ctx: ctx, sc: sc, prefix: testenv.Name(t, "chaos"), dir: t.TempDir()}
	if os.Getenv("CHAOS_KEEP_DIR") != "" { // the files and the processes' logs, for a post-mortem
		dir, err := os.MkdirTemp("", "chaos-"+sc.name+"-")
		if err != nil {
			t.Fatal(err)
		}
		r.dir = dir
		t.Logf("files and logs kept in %s", dir)
	}
	r.res = result{name: sc.name, recovery: -1}
	defer func() {
		resultsMu.Lock()
		results = append(results, r.res)
		resultsMu.Unlock()
	}()
	r.logs = filepath.Join(r.dir, "logs")
	r.registry = filepath.Join(r.dir, "registry")
	r.kafka = e.kafka(t)
	t.Cleanup(r.cleanup)
	t.Logf("%s: %s (prefix %s)", sc.name, sc.about, r.prefix)

	esAddrs := e.es
	if sc.proxy {
		r.esProxy = newESProxy(t, e.es[0])
		esAddrs = []string{r.esProxy.URL}
	}
	r.writeConfigs(esAddrs)
	r.prepare(sc.before)
	for range max(sc.aggregators, 1) {
		r.startAggregator()
	}
	r.prepare(sc.setup)
	r.ship = r.startSluice("ship", r.shipCfg)
	stopWriting := func() (int, error) { return r.w.stop() }
	if sc.tail != nil {
		r.tw = r.startTailWriter()
		stopWriting = r.tw.stop
	} else {
		r.w = startWriter(r.logs, services, e.rate)
	}
	if !sc.noWarmup {
		time.Sleep(10 * time.Second)
	}
	faultStart := time.Now()
	faultErr := sc.fault(r)
	faultEnd := r.lifted
	if faultEnd.IsZero() {
		faultEnd = time.Now()
	}
	written, werr := stopWriting()
	r.res.written = written
	t.Logf("fault lifted after %v; %d lines written", faultEnd.Sub(faultStart).Round(time.Second), written)
	if faultErr != nil {
		r.note("fault: %v", faultErr)
	}
	if werr != nil {
		r.note("writer: %v", werr)
	}
	r.account(faultEnd)
	r.stopAll()
	r.res.pass = r.res.missing == 0 && r.res.duplicates == 0 && r.res.strays == 0 && r.res.corrupt == 0 &&
		(sc.rejects || r.res.dead == 0) && faultErr == nil && werr == nil && r.res.recovery >= 0 && !r.res.unclean
	t.Logf("written %d, indexed %d, dead-lettered %d, missing %d, duplicates %d, recovery %s, peak RSS ship %d / aggregate %d MiB",
		r.res.written, r.res.indexed, r.res.dead, r.res.missing, r.res.duplicates, r.res.recoveryText(),
		r.res.peakShip>>20, r.res.peakAgg>>20)
	if !r.res.pass {
		for _, p := range r.procs {
			t.Logf("%s (%s), last lines:\n%s", p.role, p.log, tailFile(p.log, 15))
		}
		t.Errorf("%s: written %d, indexed %d, dead-lettered %d, missing %d, duplicates %d (notes: %s)",
			sc.name, r.res.written, r.res.indexed, r.res.dead, r.res.missing, r.res.duplicates, strings.Join(r.res.notes, "; "))
	}
}

// prepare runs a scenario's before or setup step, if it has one.
func (r *run) prepare(step func(*run) error) {
	if step == nil {
		return
	}
	if err := step(r); err != nil {
		r.note("setup: %v", err)
		r.t.Fatalf("setup: %v", err)
	}
}

func (r *run) writeConfigs(esAddrs []string) {
	quote := func(xs []string) string { return `["` + strings.Join(xs, `", "`) + `"]` }
	r.shipCfg = filepath.Join(r.dir, "shipper.yaml")
	inputs := fmt.Sprintf(`
  - type: service
    paths: ["%[1]s/services/*/*/*/*.log"]
    path_fields: %[1]s/services/{environment}/{customer}/{service}/
`, r.logs)
	r.shipHTTP = "127.0.0.1:0"
	if r.sc.tail != nil {
		inputs, r.shipHTTP = r.tailInputs(), freeAddr()
	}
	r.writeFile(r.shipCfg, fmt.Sprintf(`
node: chaos-node
registry: %[1]s
scan_interval: 500ms
inputs:%[2]s
kafka:
  brokers: %[3]s
  topic: %[4]s-{type}
  partitions: 6
  replication_factor: 3
http:
  listen: %[5]s
`, r.registry, inputs, quote(r.e.brokers), r.prefix, r.shipHTTP))
	r.aggCfg = filepath.Join(r.dir, "aggregator.yaml")
	r.writeFile(r.aggCfg, fmt.Sprintf(`
kafka:
  brokers: %[1]s
  group: %[2]s
  topics: [%[2]s-service]
  dead_letter_topic: %[2]s-dead-letter
  session_timeout: 10s
elasticsearch:
  addresses: %[3]s
  index: %[2]s-{type}-{service}-{environment}
  template_name: %[2]s
  retry_max: 2s
http:
  listen: 127.0.0.1:0
`, quote(r.e.brokers), r.prefix, quote(esAddrs)))
}

func (r *run) writeFile(path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *run) startAggregator() *proc {
	p := r.startSluice("aggregate", r.aggCfg)
	r.aggs = append(r.aggs, p)
	return p
}

// account waits until every written line is indexed or dead-lettered (or
// CHAOS_SETTLE passes), then counts every seq.
func (r *run) account(faultEnd time.Time) {
	pattern := r.prefix + "-*"
	want := r.res.written
	settle := r.e.settle
	if r.sc.tail != nil {
		// A million lines take minutes to index on 2 cores.
		settle = max(settle, time.Duration(want/2000)*time.Second)
	}
	deadline := time.Now().Add(settle)
	dead := 0
	lastDLQ := time.Time{}
	lastN, lastChange := -1, time.Now()
	for {
		if time.Since(lastDLQ) > 5*time.Second {
			if dl, err := r.e.deadLettered(r.ctx, r.deadLetterTopic()); err == nil {
				dead = len(dl.seqs)
			}
			lastDLQ = time.Now()
		}
		n := r.e.count(r.ctx, pattern)
		if n >= 0 && n+dead >= want {
			r.res.recovery = time.Since(faultEnd)
			break
		}
		// Lines a scenario may lose (tail_test.go) never come: done once
		// the rest is there and nothing more came for 15 s.
		if n != lastN {
			lastN, lastChange = n, time.Now()
		}
		if n >= 0 && r.mayLose() > 0 && n+dead >= want-r.mayLose() && time.Since(lastChange) > 15*time.Second {
			r.res.recovery = lastChange.Sub(faultEnd)
			break
		}
		if time.Now().After(deadline) {
			r.note("not all lines delivered %v after the fault (%d of %d indexed, %d dead-lettered)", settle, n, want, dead)
			break
		}
		time.Sleep(time.Second)
	}
	// Anything still in flight or about to be sent twice shows up now.
	time.Sleep(5 * time.Second)
	var fields []string
	var each func(json.RawMessage)
	var corrupt []string // the first few
	if r.sc.tail != nil {
		fields = []string{"body", "message"}
		each = func(src json.RawMessage) {
			bad := ""
			if d, err := decodeTailDoc(src); err != nil {
				bad = err.Error()
			} else {
				bad = r.tailCheck(d)
			}
			if bad != "" {
				r.res.corrupt++
				if len(corrupt) < 3 {
					corrupt = append(corrupt, bad)
				}
			}
		}
	}
	seqs, err := r.e.seqsIndexed(r.ctx, pattern, fields, each)
	if err != nil {
		r.note("counting: %v", err)
		r.res.missing = want
		return
	}
	dl, err := r.e.deadLettered(r.ctx, r.deadLetterTopic())
	if err != nil {
		r.note("reading the dead-letter topic: %v", err)
	}
	r.res.dead = len(dl.seqs)
	if r.res.dead > 0 && !r.sc.rejects {
		r.note("%d lines dead-lettered where none should be", r.res.dead)
	}
	for reason, n := range dl.reasons {
		r.note("dead letter x%d: %s", n, reason)
	}
	inDLQ := map[int]bool{}
	for _, s := range dl.seqs {
		inDLQ[s] = true
	}
	for s, c := range seqs {
		switch {
		case s < 0 || s >= want:
			r.res.strays += c
		case c > 1:
			r.res.duplicates += c - 1
		}
		if s >= 0 && s < want {
			r.res.indexed++
		}
	}
	var missing, twice []int
	for s := range want {
		if seqs[s] > 1 {
			twice = append(twice, s)
		}
		if seqs[s] == 0 && !inDLQ[s] {
			missing = append(missing, s)
		}
	}
	r.res.missing = len(missing)
	if len(missing) > 0 {
		r.note("missing seqs %s", sample(missing))
	}
	if r.sc.tail != nil {
		if r.res.corrupt > 0 {
			r.note("%d documents whose content is not their line's, e.g. %s", r.res.corrupt, strings.Join(corrupt, "; "))
		}
		r.tailAccount(missing)
	}
	if len(twice) > 0 {
		r.note("seqs indexed more than once %s", sample(twice))
	}
	if r.res.strays > 0 {
		r.note("%d documents with a seq never written", r.res.strays)
	}
}

// sample lists the first few numbers of xs.
func sample(xs []int) string {
	slices.Sort(xs)
	var b strings.Builder
	for i, x := range xs {
		if i == 5 {
			fmt.Fprintf(&b, " ... (%d)", len(xs))
			break
		}
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprint(&b, x)
	}
	return b.String()
}

// stopAll stops every process with SIGTERM and records the peak RSS of the
// shippers and of the aggregators.
func (r *run) stopAll() {
	for _, p := range r.procs {
		if err := p.stop(); err != nil && !r.killedOnPurpose(p) {
			r.note("%v", err)
			r.res.unclean = true
		}
	}
	for _, p := range r.procs {
		if p.role == "ship" {
			r.res.peakShip = max(r.res.peakShip, p.peakRSS())
		} else {
			r.res.peakAgg = max(r.res.peakAgg, p.peakRSS())
		}
	}
}

// killedOnPurpose: a process the scenario SIGKILLed (its exit status says so).
func (r *run) killedOnPurpose(p *proc) bool {
	if p.cmd.ProcessState == nil {
		return false
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func (r *run) cleanup() {
	for _, p := range r.procs {
		if !p.exited() {
			p.kill()
		}
	}
	if r.esProxy != nil {
		r.esProxy.Close()
	}
	ctx := context.Background()
	_, _ = r.e.esDo(ctx, http.MethodDelete, "/"+r.prefix+"-*", nil, nil)
	_, _ = r.e.esDo(ctx, http.MethodDelete, "/_index_template/"+r.prefix, nil, nil)
	_, _ = kadm.NewClient(r.kafka).DeleteTopics(ctx, r.topic(), r.deadLetterTopic())
}

// leader returns the broker leading a partition of the scenario's topic
// (waiting for the shipper to create it).
func (r *run) leader(partition int32) (int32, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := kadm.NewClient(r.kafka).Metadata(r.ctx, r.topic())
		if err == nil {
			if p, ok := md.Topics[r.topic()].Partitions[partition]; ok && p.Leader >= 0 {
				return p.Leader, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no leader for %s/%d: %v", r.topic(), partition, err)
		}
		time.Sleep(time.Second)
	}
}

// waitISR waits for the scenario's topics and the group offsets to be fully
// replicated again.
func (r *run) waitISR() error {
	return r.e.waitISR(r.ctx, r.kafka, 3*time.Minute, r.topic(), "__consumer_offsets")
}

// pauseAggregator SIGSTOPs aggregator i for the session timeout plus 10 s
// (not scaled: the session timeout is what matters), then SIGCONTs it.
func (r *run) pauseAggregator(i int) error {
	r.aggs[i].signal(syscall.SIGSTOP)
	time.Sleep(20 * time.Second)
	r.aggs[i].signal(syscall.SIGCONT)
	r.lift()
	return nil
}

func (r *run) waitTemplate() error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := r.e.esDo(r.ctx, http.MethodGet, "/_index_template/"+r.prefix, nil, nil); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("the aggregator did not install its template: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// mountRegistry puts the registry on a 64 KiB tmpfs (needs root).
func (r *run) mountRegistry() error {
	if err := os.MkdirAll(r.registry, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount("tmpfs", r.registry, "tmpfs", 0, "size=64k"); err != nil {
		return fmt.Errorf("mounting a tmpfs on %s (needs root): %w", r.registry, err)
	}
	r.t.Cleanup(func() {
		if err := syscall.Unmount(r.registry, syscall.MNT_DETACH); err != nil {
			r.t.Logf("unmounting %s: %v", r.registry, err)
		}
	})
	return nil
}

// fill writes zeros to path until its file system is full.
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1024)
	for {
		if _, err := f.Write(buf); err != nil {
			if strings.Contains(err.Error(), "no space") {
				return nil
			}
			return err
		}
	}
}

func (res result) recoveryText() string {
	if res.recovery < 0 {
		return "never"
	}
	return res.recovery.Round(100 * time.Millisecond).String()
}

// renderTable is the campaign's results as a Markdown table.
func renderTable(e *env) string {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "Fault campaign, %s, CHAOS_SCALE=%g, CHAOS_RATE=%d lines/s\n\n", time.Now().UTC().Format(time.RFC3339), e.scale, e.rate)
	b.WriteString("| scenario | result | written | indexed | dead-lettered | missing | duplicates | recovery | peak RSS ship / aggregate | notes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range results {
		verdict := "PASS"
		if !res.pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %s | %.0f / %.0f MiB | %s |\n", res.name, verdict,
			res.written, res.indexed, res.dead, res.missing, res.duplicates, res.recoveryText(),
			float64(res.peakShip)/(1<<20), float64(res.peakAgg)/(1<<20), strings.NewReplacer("|", "/", "\n", " ").Replace(strings.Join(res.notes, "; ")))
	}
	return b.String()
}

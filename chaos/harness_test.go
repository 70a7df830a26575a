package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/testenv"
)

// env is the campaign's cluster and settings, read from the environment.
type env struct {
	repo    string
	bin     string   // bin/sluice, built by make chaos
	script  string   // deploy/local/cluster.sh
	brokers []string // CHAOS_KAFKA
	es      []string // CHAOS_ES, es-1 first
	scale   float64  // CHAOS_SCALE: multiplies every fault's duration
	rate    int      // CHAOS_RATE: lines written per second, over all files
	settle  time.Duration
	out     string // CHAOS_OUT: where the table is written
}

func loadEnv(t *testing.T) *env {
	t.Helper()
	repo, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		repo:    repo,
		bin:     filepath.Join(repo, "bin", "sluice"),
		script:  filepath.Join(repo, "deploy", "local", "cluster.sh"),
		brokers: strings.Split(getenv("CHAOS_KAFKA", "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"), ","),
		es:      strings.Split(getenv("CHAOS_ES", "http://127.0.0.1:19200,http://127.0.0.1:19201"), ","),
		out:     getenv("CHAOS_OUT", filepath.Join(repo, "benchmarks", "out", "chaos.md")),
	}
	if e.scale, err = strconv.ParseFloat(getenv("CHAOS_SCALE", "1"), 64); err != nil || e.scale <= 0 {
		t.Fatalf("CHAOS_SCALE=%q: want a positive number (0.5 halves every fault)", os.Getenv("CHAOS_SCALE"))
	}
	if e.rate, err = strconv.Atoi(getenv("CHAOS_RATE", "400")); err != nil || e.rate < 10 {
		t.Fatalf("CHAOS_RATE=%q: want lines per second, at least 10", os.Getenv("CHAOS_RATE"))
	}
	if e.settle, err = time.ParseDuration(getenv("CHAOS_SETTLE", "3m")); err != nil {
		t.Fatalf("CHAOS_SETTLE=%q: want a duration such as 3m", os.Getenv("CHAOS_SETTLE"))
	}
	if _, err := os.Stat(e.bin); err != nil {
		t.Fatalf("%s: %v (make chaos builds it; or run make build)", e.bin, err)
	}
	return e
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// d scales a fault's duration by CHAOS_SCALE.
func (e *env) d(base time.Duration) time.Duration {
	return time.Duration(float64(base) * e.scale)
}

// cluster runs cluster.sh with args (start kafka-2, kill es-2, ...).
func (e *env) cluster(args ...string) error {
	cmd := exec.Command(e.script, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		// Its last line says what went wrong; above it is a server's log.
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return fmt.Errorf("cluster.sh %s: %w: %s", strings.Join(args, " "), err, lines[len(lines)-1])
	}
	return nil
}

// --- sluice processes -----------------------------------------------------------

// proc is one sluice process. Its peak RSS (VmHWM) is sampled while it
// runs, since /proc forgets it at exit.
type proc struct {
	role string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	mu   sync.Mutex
	peak int64 // bytes
	err  error
}

func (r *run) startSluice(role, cfg string) *proc {
	r.t.Helper()
	r.nproc++
	logPath := filepath.Join(r.dir, fmt.Sprintf("%s-%d.log", role, r.nproc))
	f, err := os.Create(logPath)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command(r.e.bin, role, "-c", cfg)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("starting sluice %s: %v", role, err)
	}
	p := &proc{role: role, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	go p.sample()
	r.procs = append(r.procs, p)
	return p
}

func (p *proc) sample() {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if hwm := vmHWM(p.cmd.Process.Pid); hwm > 0 {
			p.mu.Lock()
			p.peak = max(p.peak, hwm)
			p.mu.Unlock()
		}
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
	}
}

// vmHWM reads a process's peak resident set size, in bytes (0 if gone).
func vmHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM (after SIGCONT, in case it is stopped) and waits up to
// 40 s; it reports whether the process exited cleanly in time.
func (p *proc) stop() error {
	if p.exited() {
		return p.exitErr()
	}
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(40 * time.Second):
		p.kill()
		return fmt.Errorf("sluice %s did not exit within 40 s of SIGTERM", p.role)
	}
}

func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return fmt.Errorf("sluice %s: %w", p.role, p.err)
	}
	return nil
}

func (p *proc) peakRSS() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// --- the lines --------------------------------------------------------------

// writer appends uniquely numbered service lines (seq 0, 1, 2, ...) to one
// file per service, round robin, at a steady rate, until stopped.
type writer struct {
	logs     string
	services []string
	rate     int

	mu     sync.Mutex
	seq    int
	perSvc map[string]int
	gen    int // the file generation: app.log, then app-1.log, ...
	stopc  chan struct{}
	done   chan struct{}
	err    error
}

func startWriter(logs string, services []string, rate int) *writer {
	w := &writer{logs: logs, services: services, rate: rate, perSvc: map[string]int{},
		stopc: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *writer) path(svc string, gen int) string {
	name := "app.log"
	if gen > 0 {
		name = fmt.Sprintf("app-%d.log", gen)
	}
	return filepath.Join(w.logs, "services", "prod", "acme", svc, name)
}

func (w *writer) loop() {
	defer close(w.done)
	const ticks = 10 // per second
	tick := time.NewTicker(time.Second / ticks)
	defer tick.Stop()
	carry := 0
	for {
		select {
		case <-w.stopc:
			return
		case <-tick.C:
		}
		carry += w.rate
		n := carry / ticks
		carry %= ticks
		if err := w.write(n); err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		}
	}
}

func (w *writer) write(n int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	bufs := map[string]*bytes.Buffer{}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for range n {
		svc := w.services[w.seq%len(w.services)]
		b := bufs[svc]
		if b == nil {
			b = &bytes.Buffer{}
			bufs[svc] = b
		}
		fmt.Fprintf(b, `{"@timestamp":%q,"level":"info","service":%q,"msg":"chaos line","seq":%d}`+"\n", now, svc, w.seq)
		w.perSvc[svc]++
		w.seq++
	}
	for svc, b := range bufs {
		path := w.path(svc, w.gen)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(b.Bytes())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// newFiles makes the following lines go to new files (app-1.log, ...).
func (w *writer) newFiles() {
	w.mu.Lock()
	w.gen++
	w.mu.Unlock()
}

// stop ends writing and returns how many lines were written (seq 0..n-1).
func (w *writer) stop() (int, error) {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq, w.err
}

func (w *writer) written(svc string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.perSvc[svc]
}

// --- Elasticsearch ---------------------------------------------------------------

// esDo sends one request to es-1 and decodes the answer into out (if not
// nil); it returns the HTTP status.
func (e *env) esDo(ctx context.Context, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.es[0]+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, err
	}
	if res.StatusCode >= 300 {
		return res.StatusCode, fmt.Errorf("elasticsearch %s %s: %s: %s", method, path, res.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return res.StatusCode, fmt.Errorf("elasticsearch %s %s: %w", method, path, err)
		}
	}
	return res.StatusCode, nil
}

// count returns the number of documents in the indices of pattern (after a
// refresh), -1 when Elasticsearch does not answer.
func (e *env) count(ctx context.Context, pattern string) int {
	_, _ = e.esDo(ctx, http.MethodPost, "/"+pattern+"/_refresh?ignore_unavailable=true", nil, nil)
	var res struct {
		Count int `json:"count"`
	}
	if _, err := e.esDo(ctx, http.MethodGet, "/"+pattern+"/_count?ignore_unavailable=true", nil, &res); err != nil {
		return -1
	}
	return res.Count
}

// seqsIndexed scrolls over every document of pattern and counts each seq.
// With each set, it also reads the members fields of every document (with
// seq) and hands each document's source to each.
func (e *env) seqsIndexed(ctx context.Context, pattern string, fields []string, each func(json.RawMessage)) (map[int]int, error) {
	_, _ = e.esDo(ctx, http.MethodPost, "/"+pattern+"/_refresh", nil, nil)
	type page struct {
		ScrollID string `json:"_scroll_id"`
		Shards   struct {
			Failed int `json:"failed"`
		} `json:"_shards"`
		Hits struct {
			Hits []struct {
				Source json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	seqs := map[int]int{}
	var p page
	if _, err := e.esDo(ctx, http.MethodPost, "/"+pattern+"/_search?scroll=2m", map[string]any{
		"size": 5000, "_source": append([]string{"seq"}, fields...), "sort": []string{"_doc"},
	}, &p); err != nil {
		return nil, err
	}
	defer func() {
		if p.ScrollID != "" {
			_, _ = e.esDo(context.Background(), http.MethodDelete, "/_search/scroll", map[string]any{"scroll_id": p.ScrollID}, nil)
		}
	}()
	for {
		if p.Shards.Failed > 0 {
			return nil, fmt.Errorf("searching %s: %d shards failed", pattern, p.Shards.Failed)
		}
		if len(p.Hits.Hits) == 0 {
			return seqs, nil
		}
		for _, h := range p.Hits.Hits {
			var src struct {
				Seq *int `json:"seq"`
			}
			if json.Unmarshal(h.Source, &src) != nil || src.Seq == nil {
				seqs[-1]++ // a document without seq: counted as a stray
				continue
			}
			seqs[*src.Seq]++
			if each != nil {
				each(h.Source)
			}
		}
		id := p.ScrollID
		p = page{}
		if _, err := e.esDo(ctx, http.MethodPost, "/_search/scroll", map[string]any{"scroll": "2m", "scroll_id": id}, &p); err != nil {
			return nil, err
		}
	}
}

// --- Kafka ------------------------------------------------------------------

func (e *env) kafka(t *testing.T) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RequestRetries(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// deadLetters is what the dead-letter topic holds.
type deadLetters struct {
	seqs    []int          // of every record (-1 for one without a readable seq)
	reasons map[string]int // the sluice.dlq.reason headers (their start), counted
}

// deadLettered reads the dead-letter topic to its end.
func (e *env) deadLettered(ctx context.Context, topic string) (deadLetters, error) {
	dl := deadLetters{reasons: map[string]int{}}
	return dl, e.readDeadLetters(ctx, topic, &dl)
}

func (e *env) readDeadLetters(ctx context.Context, topic string, dl *deadLetters) error {
	adm, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		return err
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if err := ends.Error(); err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return nil
		}
		return err
	}
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("reading %s: %w", topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			var line struct {
				Seq *int `json:"seq"`
			}
			if json.Unmarshal(r.Value, &line) == nil && line.Seq != nil {
				dl.seqs = append(dl.seqs, *line.Seq)
			} else {
				dl.seqs = append(dl.seqs, -1)
			}
			for _, h := range r.Headers {
				if h.Key == "sluice.dlq.reason" {
					reason := string(h.Value)
					if len(reason) > 100 {
						reason = reason[:100] + "..."
					}
					dl.reasons[reason]++
				}
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return nil
}

// waitISR waits until every partition of topics has a leader and all three
// replicas in sync, or timeout passes.
func (e *env) waitISR(ctx context.Context, cl *kgo.Client, timeout time.Duration, topics ...string) error {
	deadline := time.Now().Add(timeout)
	adm := kadm.NewClient(cl)
	for {
		md, err := adm.Metadata(ctx, topics...)
		behind := ""
		if err != nil {
			behind = err.Error()
		} else {
			for _, td := range md.Topics {
				for _, p := range td.Partitions {
					if p.Err != nil || p.Leader < 0 || len(p.ISR) < 3 {
						behind = fmt.Sprintf("%s/%d: leader %d, ISR %v", td.Topic, p.Partition, p.Leader, p.ISR)
					}
				}
			}
		}
		if behind == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replicas not in sync after %v: %s", timeout, behind)
		}
		time.Sleep(time.Second)
	}
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

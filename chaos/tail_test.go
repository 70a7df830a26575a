package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The tailing scenarios: one file (or one container log) written fast and
// rotated, truncated or split while the shipper may be killed, with every
// line's content checked in Elasticsearch, not only its seq: a line glued
// to another or cut short is not JSON any more and comes back without a
// seq (a stray), a line whose bytes changed has the wrong body.

// tailRate is the writer's rate in the tailing scenarios (lines/s, not
// scaled: the sizes are).
const tailRate = 30000

// tailSpec is what a tailing scenario writes and how the shipper reads it.
type tailSpec struct {
	mode  string // rename, copytruncate, cri, wrapped
	glob  string // the input's file name glob (app.log, app.log*)
	lines int    // lines written at CHAOS_SCALE=1
	every int    // rename and copytruncate: lines between rotations
	kills int    // SIGKILLs of the shipper, spread over the writing
}

func tailScenarios() []scenario {
	return []scenario{
		{
			name:     "rotate-rename",
			about:    "1M lines at 30k/s into app.log (glob app.log), renamed away every 10k lines (the app writes a few more to the old file); shipper SIGKILLed 3 times (files renamed away while it is down may be lost: the glob no longer finds them)",
			noWarmup: true,
			tail:     &tailSpec{mode: "rename", glob: "app.log", lines: 1_000_000, every: 10_000, kills: 3},
			before:   tailBefore,
			fault:    tailFault,
		},
		{
			name:     "rotate-rename-star",
			about:    "the same with glob app.log* (the rotated files match too)",
			noWarmup: true,
			tail:     &tailSpec{mode: "rename", glob: "app.log*", lines: 1_000_000, every: 10_000, kills: 3},
			before:   tailBefore,
			fault:    tailFault,
		},
		{
			name:     "copytruncate",
			about:    "100k lines at 30k/s, glob app.log*; every 10k lines app.log copied, 20 more lines written, then truncated at once (odd rotations) or after 1.5 s (even); lines lost only in the windows, and counted for the slow ones",
			noWarmup: true,
			tail:     &tailSpec{mode: "copytruncate", glob: "app.log*", lines: 100_000, every: 10_000},
			before:   tailBefore,
			fault:    tailFault,
		},
		{
			name:     "cri-interleaved",
			about:    "100k lines at 30k/s in a CRI container log (format cri), every 50th a 10 KB stdout line in P pieces with stderr lines between them; shipper SIGKILLed once",
			noWarmup: true,
			tail:     &tailSpec{mode: "cri", glob: "*.log", lines: 100_000, kills: 1},
			before:   tailBefore,
			fault:    tailFault,
		},
		{
			name:     "wrapped-json",
			about:    `20k Docker-style lines {"log":"{\"message\":...}\n"}: message and seq decoded from the wrapped JSON`,
			noWarmup: true,
			tail:     &tailSpec{mode: "wrapped", glob: "app.log", lines: 20_000},
			before:   tailBefore,
			fault:    tailFault,
		},
	}
}

// tailDir is where a tailing scenario's files are (the service's directory,
// so that path_fields name it; the container log directory for cri).
func (r *run) tailDir() string {
	if r.sc.tail.mode == "cri" {
		return filepath.Join(r.logs, "containers")
	}
	return filepath.Join(r.logs, "services", "prod", "acme", "tail")
}

// tailInputs is the shipper's inputs section for a tailing scenario.
func (r *run) tailInputs() string {
	ts := r.sc.tail
	if ts.mode == "cri" {
		return fmt.Sprintf(`
  - type: service
    format: cri
    paths: ["%s/%s"]
    fields: {service: tail, environment: prod}
`, r.tailDir(), ts.glob)
	}
	return fmt.Sprintf(`
  - type: service
    paths: ["%[1]s/services/*/*/*/%[2]s"]
    path_fields: %[1]s/services/{environment}/{customer}/{service}/
`, r.logs, ts.glob)
}

// tailFault kills the shipper ts.kills times, evenly over the writing,
// each time down for 0.2-1 s (rotations happen meanwhile), and returns
// when every line is written.
func tailFault(r *run) error {
	ts := r.sc.tail
	for i := 1; i <= ts.kills; i++ {
		r.tw.waitFor(r.tw.total * i / (ts.kills + 1))
		r.tw.setDown(true)
		r.tw.mu.Lock()
		r.tw.kills = append(r.tw.kills, time.Now())
		r.tw.mu.Unlock()
		r.ship.kill()
		r.note("SIGKILL at line %d", r.tw.written())
		time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond)
		r.ship = r.startSluice("ship", r.shipCfg)
		// Up once its first scan is done (scan_interval is 500 ms).
		time.Sleep(time.Second)
		r.tw.setDown(false)
	}
	<-r.tw.done
	return nil
}

// tailBody is line seq's payload: 20-300 characters, some of two bytes
// (10,000 for every 50th line of cri), made of seq so that a line shipped
// with another's bytes shows. (Cut by characters: half an é would not be
// JSON.)
func tailBody(mode string, seq int) string {
	n := 20 + (seq*7919)%281
	if mode == "cri" && seq%50 == 0 {
		n = 10_000
	}
	unit := []rune(strconv.Itoa(seq) + "-é-")
	return string(slices.Repeat(unit, n/len(unit)+1)[:n])
}

func tailLine(seq int, now string, body string) string {
	return fmt.Sprintf(`{"@timestamp":%q,"level":"info","msg":"tail line","seq":%d,"body":%q}`, now, seq, body)
}

// tailWriter writes ts.lines*CHAOS_SCALE numbered lines at tailRate and
// rotates as ts.mode says.
type tailWriter struct {
	dir   string
	ts    *tailSpec
	total int

	mu      sync.Mutex
	seq     int
	f       *os.File // the live file, kept open as an app would
	rotated int
	// excused: seqs the shipper may lose and why: written between a copy
	// and its quick truncation, or in a file renamed out of a live-only
	// glob (app.log) while the shipper was down.
	excused map[int]string
	down    bool // the shipper is killed or not yet scanned again
	// renamedDown: the files excused for being renamed while the shipper
	// was down.
	renamedDown []renamedGen
	kills       []time.Time // when the shipper was SIGKILLed
	genStart    int         // the first seq of the live file
	cond        *sync.Cond
	done        chan struct{}
	err         error
}

func (r *run) startTailWriter() *tailWriter {
	ts := r.sc.tail
	w := &tailWriter{dir: r.tailDir(), ts: ts, total: max(1, int(float64(ts.lines)*r.e.scale)),
		excused: map[int]string{}, done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		r.t.Fatal(err)
	}
	go w.loop()
	return w
}

func (w *tailWriter) live() string { return livePath(w.dir, w.ts.mode) }

func livePath(dir, mode string) string {
	if mode == "cri" {
		return filepath.Join(dir, "tail-0_prod_app-"+strings.Repeat("ab", 32)+".log")
	}
	return filepath.Join(dir, "app.log")
}

// tailBefore creates the app's directory and its empty log before the
// shipper starts, as an app that runs already: a directory a glob's
// wildcard matches is only watched once a scan found a file in it, so a
// first file renamed away within scan_interval of the directory's creation
// would never be seen (reported, not what these scenarios are about).
func tailBefore(r *run) error {
	if err := os.MkdirAll(r.tailDir(), 0o755); err != nil {
		return err
	}
	return os.WriteFile(livePath(r.tailDir(), r.sc.tail.mode), nil, 0o644)
}

func (w *tailWriter) loop() {
	defer close(w.done)
	err := w.run()
	w.mu.Lock()
	w.err = err
	if w.f != nil {
		if cerr := w.f.Close(); err == nil && cerr != nil {
			w.err = cerr
		}
	}
	w.cond.Broadcast()
	w.mu.Unlock()
}

func (w *tailWriter) run() error {
	const ticks = 100 // per second
	tick := time.NewTicker(time.Second / ticks)
	defer tick.Stop()
	per := tailRate / ticks
	for {
		<-tick.C
		w.mu.Lock()
		err := w.writeBatch(min(per, w.total-w.seq))
		finished := w.seq >= w.total
		w.cond.Broadcast()
		w.mu.Unlock()
		if err != nil || finished {
			return err
		}
	}
}

// writeBatch writes n lines, rotating at every ts.every lines. w.mu held.
func (w *tailWriter) writeBatch(n int) error {
	var b bytes.Buffer
	now := time.Now().UTC().Format(time.RFC3339Nano)
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		if w.f == nil {
			f, err := os.OpenFile(w.live(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				return err
			}
			w.f = f
		}
		_, err := w.f.Write(b.Bytes())
		b.Reset()
		return err
	}
	for range n {
		seq := w.seq
		switch w.ts.mode {
		case "cri":
			w.criLine(&b, now)
		case "wrapped":
			inner := fmt.Sprintf(`{"message":"wrapped %d","seq":%d,"body":%q}`, seq, seq, tailBody("wrapped", seq))
			fmt.Fprintf(&b, `{"log":%q,"stream":"stdout","time":%q}`+"\n", inner+"\n", now)
			w.seq++
		default:
			b.WriteString(tailLine(seq, now, tailBody(w.ts.mode, seq)) + "\n")
			w.seq++
		}
		if w.ts.every > 0 && w.seq%w.ts.every == 0 && w.seq < w.total {
			if err := flush(); err != nil {
				return err
			}
			if err := w.rotate(now); err != nil {
				return err
			}
		}
		if w.seq >= w.total {
			break
		}
	}
	return flush()
}

// criLine writes the next line in CRI format; every 50th is a long stdout
// line in P pieces of 4 KiB with a stderr line (the next seqs) after each
// piece but the last.
func (w *tailWriter) criLine(b *bytes.Buffer, now string) {
	seq := w.seq
	line := tailLine(seq, now, tailBody("cri", seq))
	w.seq++
	if seq%50 != 0 {
		stream := "stdout"
		if seq%3 == 1 {
			stream = "stderr"
		}
		fmt.Fprintf(b, "%s %s F %s\n", now, stream, line)
		return
	}
	const piece = 4096
	for len(line) > piece {
		fmt.Fprintf(b, "%s stdout P %s\n", now, line[:piece])
		line = line[piece:]
		if w.seq < w.total {
			fmt.Fprintf(b, "%s stderr F %s\n", now, tailLine(w.seq, now, tailBody("cri", w.seq)))
			w.seq++
		}
	}
	fmt.Fprintf(b, "%s stdout F %s\n", now, line)
}

// rotate renames the live file away (after 5 more lines to the old one,
// as an app that reopens its file a moment later), or copies and
// truncates it, with 20 lines written between the copy and the truncation
// that only the original ever holds: at odd rotations truncated at once,
// before the shipper can have seen them (those may be lost, and no one
// can count them), at even ones 1.5 s later (read by then, unless the
// shipper is behind; then its once-a-second look at the size has seen
// them, and their loss must be counted). w.mu held.
func (w *tailWriter) rotate(now string) error {
	w.rotated++
	live := w.live()
	old := fmt.Sprintf("%s.%d", live, w.rotated)
	switch w.ts.mode {
	case "rename":
		if err := os.Rename(live, old); err != nil {
			return err
		}
		if w.down && w.ts.glob == "app.log" {
			// Unless the registry knew the file, nothing points at it now.
			// (A file a shipper opened before it was killed is not
			// excused: see unexcuseSeen.)
			g := renamedGen{start: w.genStart, end: w.seq + min(5, w.total-w.seq), name: filepath.Base(old)}
			if fi, err := os.Stat(old); err == nil {
				g.ino = fi.Sys().(*syscall.Stat_t).Ino
			}
			w.renamedDown = append(w.renamedDown, g)
			for s := g.start; s < g.end; s++ {
				w.excused[s] = "file renamed out of the glob while the shipper was down, unknown to its registry"
			}
		}
		defer func() { w.genStart = w.seq }()
		var b bytes.Buffer
		for range min(5, w.total-w.seq) {
			b.WriteString(tailLine(w.seq, now, tailBody(w.ts.mode, w.seq)) + "\n")
			w.seq++
		}
		_, err := w.f.Write(b.Bytes())
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
		w.f = nil
		return err
	case "copytruncate":
		data, err := os.ReadFile(live)
		if err != nil {
			return err
		}
		if err := os.WriteFile(old, data, 0o644); err != nil {
			return err
		}
		var b bytes.Buffer
		quick := w.rotated%2 == 1
		for range min(20, w.total-w.seq) {
			if quick {
				w.excused[w.seq] = "quick copy-to-truncation window"
			} else {
				w.excused[w.seq] = "slow copy-to-truncation window"
			}
			b.WriteString(tailLine(w.seq, now, tailBody(w.ts.mode, w.seq)) + "\n")
			w.seq++
		}
		if _, err := w.f.Write(b.Bytes()); err != nil {
			return err
		}
		if !quick {
			time.Sleep(1500 * time.Millisecond)
		}
		return w.f.Truncate(0) // O_APPEND: the next write is at 0
	}
	return nil
}

// waitFor blocks until n lines are written (or the writer ended).
func (w *tailWriter) waitFor(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.seq < n && w.err == nil && !w.finished() {
		w.cond.Wait()
	}
}

func (w *tailWriter) finished() bool {
	select {
	case <-w.done:
		return true
	default:
		return w.seq >= w.total
	}
}

func (w *tailWriter) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq
}

// stop waits for the writer to finish and returns the lines written.
func (w *tailWriter) stop() (int, error) {
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq, w.err
}

// tailDoc is what the check reads of a document.
type tailDoc struct {
	Seq     *int    `json:"seq"`
	Body    *string `json:"body"`
	Message *string `json:"message"`
}

// tailCheck compares a document with the line of its seq; it returns
// what is wrong, "" when nothing.
func (r *run) tailCheck(d tailDoc) string {
	seq := *d.Seq
	if d.Body == nil || *d.Body != tailBody(r.sc.tail.mode, seq) {
		got := "none"
		if d.Body != nil {
			got = fmt.Sprintf("%d bytes %.40q", len(*d.Body), *d.Body)
		}
		return fmt.Sprintf("seq %d: body %s", seq, got)
	}
	if r.sc.tail.mode == "wrapped" {
		if d.Message == nil || *d.Message != fmt.Sprintf("wrapped %d", seq) {
			return fmt.Sprintf("seq %d: message %v, want the wrapped JSON's", seq, d.Message)
		}
	}
	return ""
}

// renamedGen is one file generation: lines [start, end), its inode.
type renamedGen struct {
	start, end int
	ino        uint64
	name       string
}

// unexcuseSeen takes back the excuse of files renamed while the shipper
// was down that a shipper had opened (its "reading file" log line names
// the inode in the file id, dev-ino-...) more than registry_flush (1 s)
// plus a margin before it was killed: the registry should have known
// them, so losing them is a defect, not the glob's limit.
func (r *run) unexcuseSeen(missing []int) {
	opened := map[uint64]time.Time{} // first "reading file" of each inode
	for _, p := range r.procs {
		if p.role != "ship" {
			continue
		}
		data, err := os.ReadFile(p.log)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if !strings.Contains(line, `"msg":"reading file"`) {
				continue
			}
			_, rest, ok := strings.Cut(line, `"file_id":"`)
			if !ok {
				continue
			}
			parts := strings.SplitN(rest, "-", 3)
			if len(parts) != 3 {
				continue
			}
			ino, err := strconv.ParseUint(parts[1], 16, 64)
			if err != nil {
				continue
			}
			_, ts, _ := strings.Cut(line, `"@timestamp":"`)
			ts, _, _ = strings.Cut(ts, `"`)
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				continue
			}
			if t0, ok := opened[ino]; !ok || at.Before(t0) {
				opened[ino] = at
			}
		}
	}
	gone := map[int]bool{}
	for _, s := range missing {
		gone[s] = true
	}
	for _, g := range r.tw.renamedDown {
		at, ok := opened[g.ino]
		if g.ino == 0 || !ok || !gone[g.start] {
			continue
		}
		var kill time.Time // the first kill after it was opened
		for _, k := range r.tw.kills {
			if k.After(at) {
				kill = k
				break
			}
		}
		if kill.IsZero() || kill.Sub(at) < 1500*time.Millisecond {
			r.note("%s (lines %d-%d) lost: opened %v before the kill, less than registry_flush (1 s) + 0.5 s: excused", g.name, g.start, g.end-1, kill.Sub(at).Round(time.Millisecond))
			continue
		}
		r.note("%s (lines %d-%d) lost though a shipper had opened it %v before it was killed (renamed out of the glob while the shipper was down): not excused", g.name, g.start, g.end-1, kill.Sub(at).Round(time.Millisecond))
		for s := g.start; s < g.end; s++ {
			delete(r.tw.excused, s)
		}
	}
}

func (w *tailWriter) setDown(down bool) {
	w.mu.Lock()
	w.down = down
	w.mu.Unlock()
}

// mayLose is how many lines a scenario may lose (tailWriter.excused).
func (r *run) mayLose() int {
	if r.tw == nil {
		return 0
	}
	return len(r.tw.excused)
}

// tailAccount adds the tailing scenarios' own checks to the seq count:
// only excused lines may be missing (reported by reason, and for
// copytruncate with the shipper's count of bytes lost to truncation,
// which cannot see bytes truncated before it looked).
func (r *run) tailAccount(missing []int) {
	ts := r.sc.tail
	if len(missing) > 0 {
		r.note("missing ranges %s", ranges(missing))
	}
	r.unexcuseSeen(missing)
	outside, lostBytes := 0, 0
	why := map[string]int{}
	for _, s := range missing {
		if reason, ok := r.tw.excused[s]; ok {
			why[reason]++
			lostBytes += len(tailLine(s, "", tailBody(ts.mode, s))) + 1
		} else {
			outside++
		}
	}
	for reason, n := range why {
		r.note("%d lines lost (excused): %s", n, reason)
	}
	r.res.missing = outside // excused lines are documented limits, not failures
	if ts.mode == "copytruncate" {
		lost, err := r.shipMetric("sluice_shipper_truncated_lost_bytes_total")
		if err != nil {
			r.note("reading the shipper's metrics: %v", err)
		}
		r.note("%d of %d window lines lost (about %d bytes), sluice_shipper_truncated_lost_bytes_total %.0f",
			len(missing)-outside, len(r.tw.excused), lostBytes, lost)
		if why["slow copy-to-truncation window"] > 0 && lost == 0 {
			r.note("lines of a slow window lost and no lost bytes counted")
			r.res.missing += why["slow copy-to-truncation window"]
		}
	}
}

// shipMetric reads one counter from the running shipper's /metrics.
func (r *run) shipMetric(name string) (float64, error) {
	res, err := http.Get("http://" + r.shipHTTP + "/metrics")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("%s not in /metrics", name)
}

// freeAddr is a loopback address with a port free a moment ago, for the
// shipper's /metrics (read by the harness).
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

// decodeTailDoc decodes a hit's _source.
func decodeTailDoc(src json.RawMessage) (tailDoc, error) {
	var d tailDoc
	err := json.Unmarshal(src, &d)
	return d, err
}

func init() { scenarios = append(scenarios, tailScenarios()...) }

// ranges lists sorted numbers as runs (0-10004,30005-40004), the first 10.
func ranges(xs []int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(xs); {
		j := i
		for j+1 < len(xs) && xs[j+1] == xs[j]+1 {
			j++
		}
		if n == 10 {
			b.WriteString(",...")
			break
		}
		if n > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%d-%d", xs[i], xs[j])
		n++
		i = j + 1
	}
	return b.String()
}

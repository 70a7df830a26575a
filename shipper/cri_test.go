package shipper

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/event"
)

func TestCRIAssembler(t *testing.T) {
	raw := []string{
		"2026-11-25T10:00:00.1Z stdout P first ",
		"2026-11-25T10:00:00.2Z stdout P second ",
		"2026-11-25T10:00:00.3Z stdout F third",
		"2026-11-25T10:00:01Z stderr F {\"level\":\"error\"}",
		"not cri at all",
		"2026-11-25T10:00:02Z stdout P " + strings.Repeat("x", 30),
		"2026-11-25T10:00:02Z stdout F " + strings.Repeat("y", 30),
	}
	a := &criAssembler{max: 40}
	var pos int64
	type out struct {
		data, stream string
		start, end   int64
		trunc        bool
		flags        []string
	}
	var got []out
	for _, r := range raw {
		l := line{Data: []byte(r), Start: pos, End: pos + int64(len(r)) + 1}
		pos = l.End
		for _, c := range a.add(l) {
			got = append(got, out{string(c.Data), c.Stream, c.Start, c.End, c.Truncated, c.Flags})
		}
	}
	start5 := int64(0)
	for _, r := range raw[:5] {
		start5 += int64(len(r)) + 1
	}
	want := []out{
		{"first second third", "stdout", 0, int64(len(raw[0]) + len(raw[1]) + len(raw[2]) + 3), false, nil},
		{`{"level":"error"}`, "stderr", 0, 0, false, nil},
		{"not cri at all", "", 0, 0, false, []string{event.FlagInvalidCRI}},
		{strings.Repeat("x", 30) + strings.Repeat("y", 10), "stdout", start5, pos, true, nil},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines: %+v", len(got), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.data != w.data || g.stream != w.stream || g.trunc != w.trunc || len(g.flags) != len(w.flags) {
			t.Errorf("line %d = %+v, want %+v", i, g, w)
		}
		if w.end != 0 && (g.start != w.start || g.end != w.end) {
			t.Errorf("line %d covers %d..%d, want %d..%d", i, g.start, g.end, w.start, w.end)
		}
	}
	if ls := a.flush(); len(ls) != 0 {
		t.Error("nothing should be pending")
	}
	a.add(line{Data: []byte("2026-11-25T10:00:03Z stdout P dangling"), Start: pos, End: pos + 10})
	if ls := a.flush(); len(ls) != 1 || string(ls[0].Data) != "dangling" || ls[0].LogTime.IsZero() || len(ls[0].Flags) != 1 {
		t.Errorf("flush = %+v", ls)
	}
}

// TestCRIAssemblerInterleaved writes 2,000 long stdout lines, each split in
// pieces with a stderr line between them, as a runtime does when both
// streams write at once: every line comes out whole, none is lost, and the
// offset the registry may move to never passes the first piece of a line
// still waiting for its end.
func TestCRIAssemblerInterleaved(t *testing.T) {
	const n = 2000
	a := &criAssembler{max: 1 << 20}
	var pos int64
	var gotOut, gotErr []string
	pendingFrom := int64(-1) // first byte of the stdout line being joined
	lastResume := int64(0)
	feed := func(s string) {
		l := line{Data: []byte(s), Start: pos, End: pos + int64(len(s)) + 1}
		pos = l.End
		for _, c := range a.add(l) {
			n, resume := c.covered()
			if resume < lastResume || resume > pos || n <= 0 {
				t.Fatalf("line at %d: resume %d after %d (read to %d), %d bytes", c.Start, resume, lastResume, pos, n)
			}
			if pendingFrom >= 0 && c.Stream == "stderr" && resume > pendingFrom {
				t.Fatalf("stderr line moves the registry to %d, past the pending stdout line at %d", resume, pendingFrom)
			}
			lastResume = resume
			if c.Stream == "stdout" {
				if c.Start != pendingFrom {
					t.Fatalf("stdout line starts at %d, want %d", c.Start, pendingFrom)
				}
				pendingFrom = -1
				gotOut = append(gotOut, string(c.Data))
			} else {
				gotErr = append(gotErr, string(c.Data))
			}
		}
	}
	long := func(i int) string { return fmt.Sprintf("out-%04d-", i) + strings.Repeat("o", 3000) }
	for i := range n {
		s := long(i)
		pendingFrom = pos
		feed("2026-11-25T10:00:00.1Z stdout P " + s[:1000])
		feed(fmt.Sprintf("2026-11-25T10:00:00.2Z stderr F err-%04d", i))
		feed("2026-11-25T10:00:00.3Z stdout P " + s[1000:2000])
		feed("2026-11-25T10:00:00.4Z stdout F " + s[2000:])
	}
	if len(gotOut) != n || len(gotErr) != n {
		t.Fatalf("got %d stdout and %d stderr lines, want %d each", len(gotOut), len(gotErr), n)
	}
	for i := range n {
		if gotOut[i] != long(i) {
			t.Fatalf("stdout line %d corrupted: %.40q...", i, gotOut[i])
		}
		if want := fmt.Sprintf("err-%04d", i); gotErr[i] != want {
			t.Fatalf("stderr line %d = %q, want %q", i, gotErr[i], want)
		}
	}
	if lastResume != pos {
		t.Errorf("registry may move to %d, want the end %d", lastResume, pos)
	}

	// Both streams left waiting: flushed earlier line first, the registry
	// moving over the later one only with it.
	a.add(line{Data: []byte("2026-11-25T10:00:01Z stdout P a"), Start: pos, End: pos + 32})
	a.add(line{Data: []byte("2026-11-25T10:00:01Z stderr P b"), Start: pos + 32, End: pos + 64})
	a.add(line{Data: []byte("2026-11-25T10:00:01Z stdout P c"), Start: pos + 64, End: pos + 96})
	ls := a.flush()
	if len(ls) != 2 || string(ls[0].Data) != "ac" || string(ls[1].Data) != "b" || ls[0].Resume != pos+32 || ls[1].Resume != pos+96 {
		t.Fatalf("flush = %+v", ls)
	}

	// A truncated file starts again: its old pieces join nothing new.
	a.add(line{Data: []byte("2026-11-25T10:00:01Z stdout P old"), Start: pos + 96, End: pos + 128})
	a.reset()
	ls = a.add(line{Data: []byte("2026-11-25T10:00:02Z stdout F new"), Start: 0, End: 34})
	if len(ls) != 1 || string(ls[0].Data) != "new" || ls[0].Start != 0 || ls[0].Resume != 34 {
		t.Fatalf("after reset: %+v", ls)
	}
}

// TestDockerAssemblerInterleaved: Docker json-file entries, long stdout
// lines split into entries without a newline with stderr lines between
// them, come out whole per stream; a line that is not an entry is flagged.
func TestDockerAssemblerInterleaved(t *testing.T) {
	a := newContainerAssembler(FormatDocker, 1<<20)
	entry := func(stream, log string) string {
		b, _ := json.Marshal(map[string]string{"log": log, "stream": stream, "time": "2026-11-25T10:00:00Z"})
		return string(b)
	}
	var pos int64
	var got []string
	feed := func(s string) {
		l := line{Data: []byte(s), Start: pos, End: pos + int64(len(s)) + 1}
		pos = l.End
		for _, c := range a.add(l) {
			got = append(got, c.Stream+":"+string(c.Data)+fmt.Sprint(c.Flags))
		}
	}
	for i := range 200 {
		long := fmt.Sprintf("line-%03d-", i) + strings.Repeat("d", 2000)
		feed(entry("stdout", long[:700]))
		feed(entry("stderr", fmt.Sprintf("err-%03d\n", i)))
		feed(entry("stdout", long[700:1400]))
		feed(entry("stdout", long[1400:]+"\n"))
	}
	feed("not json")
	if len(got) != 401 {
		t.Fatalf("got %d lines, want 401", len(got))
	}
	for i := range 200 {
		if want := fmt.Sprintf("stderr:err-%03d[]", i); got[2*i] != want {
			t.Fatalf("line %d = %.40q, want %q", 2*i, got[2*i], want)
		}
		if want := "stdout:" + fmt.Sprintf("line-%03d-", i) + strings.Repeat("d", 2000) + "[]"; got[2*i+1] != want {
			t.Fatalf("line %d = %.40q...", 2*i+1, got[2*i+1])
		}
	}
	if got[400] != ":not json["+event.FlagInvalidDocker+"]" {
		t.Errorf("last line = %q", got[400])
	}
}

// TestCRIInputReadsDockerLines: format cri reads a Docker node's
// json-file lines too (/var/log/containers links to them there), split
// entries joined, instead of flagging them invalid_cri.
func TestCRIInputReadsDockerLines(t *testing.T) {
	a := newContainerAssembler(FormatCRI, 1<<20)
	var pos int64
	var got []string
	for _, s := range []string{
		`{"log":"{\"level\":\"info\",","stream":"stdout","time":"2026-11-25T10:00:00Z"}`,
		`{"log":"\"message\":\"joined\"}\n","stream":"stdout","time":"2026-11-25T10:00:00Z"}`,
		"2026-11-25T10:00:01Z stderr F a CRI line",
		`{"not docker":1}`,
	} {
		l := line{Data: []byte(s), Start: pos, End: pos + int64(len(s)) + 1}
		pos = l.End
		for _, c := range a.add(l) {
			got = append(got, c.Stream+":"+string(c.Data)+fmt.Sprint(c.Flags))
		}
	}
	want := []string{`stdout:{"level":"info","message":"joined"}[]`, "stderr:a CRI line[]", `:{"not docker":1}[` + event.FlagInvalidCRI + "]"}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestKubernetesFields(t *testing.T) {
	id := strings.Repeat("ab", 32)
	got := map[string]string{}
	kubernetesFields("/var/log/containers/checkout-7d9f_shop_app-"+id+".log", got)
	want := map[string]string{"kubernetes.pod.name": "checkout-7d9f", "kubernetes.namespace": "shop",
		"kubernetes.container.name": "app", "container.name": "app", "container.id": id}
	if !maps.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

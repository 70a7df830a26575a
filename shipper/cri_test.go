package shipper

import (
	"maps"
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
		if c, ok := a.add(l); ok {
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
	if _, ok := a.flush(); ok {
		t.Error("nothing should be pending")
	}
	a.add(line{Data: []byte("2026-11-25T10:00:03Z stdout P dangling"), Start: pos, End: pos + 10})
	if l, ok := a.flush(); !ok || string(l.Data) != "dangling" || l.LogTime.IsZero() || len(l.Flags) != 1 {
		t.Errorf("flush = %+v, %v", l, ok)
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

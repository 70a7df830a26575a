package shipper

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/event"
)

// createOnly indexes events as Elasticsearch's action: create does: the
// first document with an id wins, later ones are conflicts. It returns
// the documents' lines by id.
func createOnly(events []event.Event) map[string]string {
	docs := map[string]string{}
	for _, ev := range events {
		if _, ok := docs[ev.DocID()]; !ok {
			docs[ev.DocID()] = string(ev.Line)
		}
	}
	return docs
}

// copyDir copies the regular files of dir from to a new dir to.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o750); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		if de.Type().IsRegular() {
			copyFile(t, filepath.Join(from, de.Name()), filepath.Join(to, de.Name()))
		}
	}
}

// TestUnterminatedLineCompletedAfterLostAck: a final line is shipped
// unterminated and acknowledged, the shipper dies before the registry
// records it, the app finishes the line, and the restarted shipper reads
// the whole line from the same offset. The whole line must be a document
// of its own: under action: create the partial one must not hide it.
func TestUnterminatedLineCompletedAfterLostAck(t *testing.T) {
	l := newLifecycle(t, func(c *Config) { c.UnterminatedLineAfter = 200 * time.Millisecond })
	writeLines(t, l.path("app.log"), "u", 0, 10)
	l.start()
	l.pub.waitFor(t, 10, 10*time.Second)
	l.stop()
	saved := filepath.Join(l.dir, "registry-before")
	copyDir(t, l.cfg.Registry, saved)

	l.start()
	appendTo(t, l.path("app.log"), "line id=partial begins")
	got := l.pub.waitFor(t, 11, 10*time.Second)
	if !got[10].HasFlag(event.FlagUnterminated) {
		t.Fatalf("partial line flags = %v, want unterminated", got[10].Flags)
	}
	l.stop()
	// The crash: the registry write that recorded the partial line is lost.
	if err := os.RemoveAll(l.cfg.Registry); err != nil {
		t.Fatal(err)
	}
	copyDir(t, saved, l.cfg.Registry)
	appendTo(t, l.path("app.log"), " and ends here\n")

	l.start()
	got = l.pub.waitFor(t, 12, 10*time.Second)
	whole := "line id=partial begins and ends here"
	if string(got[11].Line) != whole {
		t.Fatalf("after the restart shipped %q, want %q", got[11].Line, whole)
	}
	found := false
	for _, line := range createOnly(got) {
		found = found || line == whole
	}
	if !found {
		t.Fatalf("the completed line is in no document: it has the id of the partial one")
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

package shipper

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/telemetry"
)

type filesView struct {
	Node  string       `json:"node"`
	Files []FileStatus `json:"files"`
}

func getFiles(t *testing.T, url string) filesView {
	t.Helper()
	res, err := http.Get(url + "/files")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /files: %s, %s", res.Status, res.Header.Get("Content-Type"))
	}
	var v filesView
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// waitFiles polls /files until ok accepts it.
func waitFiles(t *testing.T, url, what string, ok func(map[string]FileStatus) bool) map[string]FileStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		byPath := map[string]FileStatus{}
		for _, f := range getFiles(t, url).Files {
			byPath[f.Path] = f
		}
		if ok(byPath) {
			return byPath
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s; /files: %+v", what, byPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFilesShowsEachFile runs a shipper with one file slot whose publisher
// holds the acknowledgements, and follows its files on /files: one read and
// not acknowledged (lag = size), one waiting for the slot; then, acknowledged,
// the first released at its end and the second read; then the first
// removed (gone), and an error reading a file.
func TestFilesShowsEachFile(t *testing.T) {
	l := newLifecycle(t, func(c *Config) { c.MaxOpenFiles = 1 })
	writeLines(t, l.path("a.log"), "a", 0, 50)
	pub := &heldPublisher{}
	sh, err := New(l.cfg, prometheus.NewRegistry(), zap.NewNop(), WithPublisher(pub))
	if err != nil {
		t.Fatal(err)
	}
	srv := telemetry.NewServer("", prometheus.NewRegistry(), zap.NewNop())
	sh.AddChecks(srv)
	web := httptest.NewServer(srv.Handler())
	defer web.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	a, b := l.path("a.log"), l.path("b.log")
	sizeA := fileSize(t, a)
	files := waitFiles(t, web.URL, "a.log read, none acknowledged", func(m map[string]FileStatus) bool {
		return m[a].State == FileReading && m[a].Size == sizeA
	})
	fa := files[a]
	if fa.Offset != 0 || fa.Lag != sizeA || fa.FileID == "" || fa.Inode == 0 || fa.Type != "service" || fa.Topic == "" {
		t.Errorf("a.log while its lines wait for Kafka: %+v, want offset 0, lag %d, an id, an inode, type and topic", fa, sizeA)
	}
	writeLines(t, b, "b", 0, 20)
	sizeB := fileSize(t, b)
	files = waitFiles(t, web.URL, "b.log waiting for max_open_files", func(m map[string]FileStatus) bool {
		return m[b].State == FileWaiting
	})
	if fb := files[b]; fb.Size != sizeB || fb.Lag != sizeB || fb.FileID != "" {
		t.Errorf("waiting b.log: %+v, want size and lag %d, no file id yet", fb, sizeB)
	}
	if files[a].State != FileReading {
		t.Errorf("a.log with lines unacknowledged is %s, want reading", files[a].State)
	}

	pub.release()
	// b.log may be released at once too: it can reach its end before the
	// scan that opened it clears the count of files waiting.
	files = waitFiles(t, web.URL, "a.log released at its end, b.log read and acknowledged", func(m map[string]FileStatus) bool {
		return m[a].State == FileReleased && (m[b].State == FileReading || m[b].State == FileReleased) && m[b].Offset == sizeB
	})
	if fa := files[a]; fa.Offset != sizeA || fa.Lag != 0 || fa.Size != sizeA || fa.Updated.IsZero() {
		t.Errorf("released a.log: %+v, want offset and size %d, lag 0, updated set", fa, sizeA)
	}

	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	files = waitFiles(t, web.URL, "a.log gone", func(m map[string]FileStatus) bool { return m[a].State == FileGone })
	if fa := files[a]; fa.Size != -1 || fa.Offset != sizeA {
		t.Errorf("gone a.log: %+v, want size -1 and its acknowledged offset %d", fa, sizeA)
	}

	sh.fileErrs.note(b, errors.New("reading: input/output error"))
	files = waitFiles(t, web.URL, "b.log's last error", func(m map[string]FileStatus) bool { return m[b].LastError != nil })
	if e := files[b].LastError; !strings.Contains(e.Message, "input/output error") || time.Since(e.Time) > time.Minute {
		t.Errorf("b.log's last error: %+v", e)
	}

	// Read-only.
	res, err := http.Post(web.URL+"/files", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /files: %s, want 405", res.Status)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

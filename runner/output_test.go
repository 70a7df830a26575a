package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/internal/event"
)

func serviceRecord(offset int64, line string) *kgo.Record {
	ev := event.Event{Type: "service", Node: "n1", Path: "/var/log/app.log", FileID: "1-2-3", Offset: offset,
		ReadTime: time.Unix(1764064800, 0), Fields: map[string]string{"service": "checkout", "environment": "prod"},
		Line: []byte(line)}
	return ev.Record("logs-service", event.EncodeFields(ev.Fields))
}

// readNDJSON decodes every line of path.
func readNDJSON(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestProcessorToSinks sends records through the aggregator's processing
// into a file and a writer sink: each document is one NDJSON line with its
// index and deterministic id, and a record that is not a Sluice event goes
// to the dead-letter file with its reason.
func TestProcessorToSinks(t *testing.T) {
	for _, kind := range []string{"file", "writer"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			var sink *NDJSON
			var stdout bytes.Buffer
			var err error
			docsPath := filepath.Join(dir, "out", "docs.ndjson")
			if kind == "file" {
				if sink, err = NewNDJSONFile(docsPath); err != nil {
					t.Fatal(err)
				}
			} else {
				sink = NewNDJSONWriter(&stdout)
			}
			defer sink.Close()
			dead, err := OpenDeadLetterFile(filepath.Join(dir, "dead.ndjson"), zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer dead.Close()
			p, err := newStages(aggregator.Config{}, sink, dead, prometheus.NewRegistry(), zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.prepare(context.Background()); err != nil {
				t.Fatal(err)
			}
			records := []*kgo.Record{
				serviceRecord(0, `{"level":"info","msg":"one"}`),
				serviceRecord(29, "not json"),
				{Topic: "logs-service", Key: []byte("k"), Value: []byte("no headers")},
			}
			if err := p.process(context.Background(), records); err != nil {
				t.Fatal(err)
			}
			data := stdout.Bytes()
			if kind == "file" {
				if data, err = os.ReadFile(docsPath); err != nil {
					t.Fatal(err)
				}
			}
			docs := readNDJSON(t, data)
			if len(docs) != 2 {
				t.Fatalf("%d documents written, want 2:\n%s", len(docs), data)
			}
			for i, off := range []int64{0, 29} {
				if docs[i]["_index"] != "logs-service-checkout-prod" {
					t.Errorf("document %d: _index %v, want logs-service-checkout-prod", i, docs[i]["_index"])
				}
				if want := event.DocID("n1", "1-2-3", off); docs[i]["_id"] != want {
					t.Errorf("document %d: _id %v, want %s", i, docs[i]["_id"], want)
				}
			}
			if src, _ := docs[1]["_source"].(map[string]any); src["message"] != "not json" {
				t.Errorf("unparsable line: _source %v, want message \"not json\"", src)
			}
			deadData, err := os.ReadFile(filepath.Join(dir, "dead.ndjson"))
			if err != nil {
				t.Fatal(err)
			}
			letters := readNDJSON(t, deadData)
			if len(letters) != 1 {
				t.Fatalf("%d dead letters, want 1:\n%s", len(letters), deadData)
			}
			if letters[0]["value"] != "no headers" || letters[0]["reason"] == "" || letters[0]["topic"] != "logs-service" {
				t.Errorf("dead letter %v: want the raw value, a reason and the topic", letters[0])
			}
		})
	}
}

func TestDeadLetterFileKeepsBinaryValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.ndjson")
	d, err := OpenDeadLetterFile(path, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	value := []byte{0xff, 0xfe, 'x'}
	if err := d.write([]deliver.DeadLetter{{Record: &kgo.Record{Topic: "t", Value: value}, Status: 400, Reason: "bad"}}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	data, _ := os.ReadFile(path)
	var l deadLetterLine
	if err := json.Unmarshal(bytes.TrimSpace(data), &l); err != nil {
		t.Fatal(err)
	}
	if l.Value != nil || !bytes.Equal(l.ValueBase64, value) {
		t.Fatalf("dead letter %s: want the bytes in value_base64", data)
	}
}

// TestFileSinkCutsATornLine reopens an output whose last line a crash left
// half written: the torn line is cut off (its batch was never acknowledged
// and comes again), and what follows starts on a line of its own.
func TestFileSinkCutsATornLine(t *testing.T) {
	tests := []struct {
		name, before, after string
	}{
		{"torn line", "{\"a\":1}\n{\"_index\":\"x\",\"_i", "{\"a\":1}\n"},
		{"only a torn line", "{\"_ind", ""},
		{"complete", "{\"a\":1}\n", "{\"a\":1}\n"},
		{"empty", "", ""},
		{"torn after a long line", strings.Repeat("x", 100<<10) + "\n" + strings.Repeat("y", 70<<10), strings.Repeat("x", 100<<10) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "docs.ndjson")
			if err := os.WriteFile(path, []byte(tt.before), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := NewNDJSONFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Deliver(context.Background(), []deliver.Item{{Index: "i", ID: "d", Source: []byte(`{}`)}}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			got, _ := os.ReadFile(path)
			if want := tt.after + `{"_index":"i","_id":"d","_source":{}}` + "\n"; string(got) != want {
				t.Fatalf("file holds %.80q..., want %.80q...", got, want)
			}
		})
	}
}

// TestFilesArePrivate: the NDJSON output and the dead-letter file, and the
// directories made for them, are readable by their owner only; a private
// source log does not end up world-readable.
func TestFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out", "docs.ndjson")
	dead := filepath.Join(dir, "dead", "sub", "dead-letter.ndjson")
	s, err := NewNDJSONFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := OpenDeadLetterFile(dead, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for path, want := range map[string]os.FileMode{
		out: 0o600, filepath.Dir(out): 0o700 | os.ModeDir,
		dead: 0o600, filepath.Dir(dead): 0o700 | os.ModeDir, filepath.Dir(filepath.Dir(dead)): 0o700 | os.ModeDir,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
}

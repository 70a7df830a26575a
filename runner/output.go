package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/internal/backoff"
)

// NDJSON is the deliver.Sink of `sluice run` without Elasticsearch: it
// writes documents as NDJSON, one per line, instead of indexing them:
//
//	{"_index":"logs-service-checkout-prod","_id":"…","_source":{…}}
//
// A batch counts as delivered once it is written (and, for a file, synced
// to disk), so the shipper's registry moves only over lines on disk.
type NDJSON struct {
	mu   sync.Mutex
	w    io.Writer
	f    *os.File // the file of a file sink, else nil
	size int64    // of f: where a failed write is cut back to
	buf  []byte
}

// NewNDJSONFile appends documents to the file at path, creating it and its
// directory; each batch is fsynced before it counts as delivered. A torn
// last line, left by a crash in the middle of a write, is cut off: its
// batch was never acknowledged and is delivered again.
func NewNDJSONFile(path string) (*NDJSON, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	size, err := cutTornLine(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &NDJSON{w: f, f: f, size: size}, nil
}

// cutTornLine truncates f after its last newline and returns its size.
func cutTornLine(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := fi.Size()
	buf := make([]byte, 64<<10)
	for pos := end; pos > 0; {
		n := min(int64(len(buf)), pos)
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return 0, fmt.Errorf("reading the end: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			keep := pos + int64(i) + 1
			if keep == end {
				return end, nil
			}
			return keep, f.Truncate(keep)
		}
	}
	return 0, f.Truncate(0)
}

// NewNDJSONWriter writes documents to w, e.g. standard output. Delivered
// means written to w.
func NewNDJSONWriter(w io.Writer) *NDJSON { return &NDJSON{w: w} }

// openAppend opens path for appending. The documents and dead letters are
// log lines, which may be private: what it creates, the file and its
// directories, only its owner can read.
func openAppend(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the directory of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return f, nil
}

// Deliver writes items, all delivered once written (and synced); it
// never returns Again: a failed write is an error, and the batch is
// written again.
func (s *NDJSON) Deliver(_ context.Context, items []deliver.Item) ([]deliver.Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buf[:0]
	for _, it := range items {
		b = append(b, `{"_index":`...)
		b = strconv.AppendQuote(b, it.Index) // index names and ids are ASCII
		b = append(b, `,"_id":`...)
		b = strconv.AppendQuote(b, it.ID)
		b = append(b, `,"_source":`...)
		b = append(b, it.Source...)
		b = append(b, "}\n"...)
	}
	s.buf = b[:0]
	if _, err := s.w.Write(b); err != nil {
		return nil, s.failed(fmt.Errorf("writing documents: %w", err))
	}
	if s.f != nil {
		if err := s.f.Sync(); err != nil {
			return nil, s.failed(fmt.Errorf("syncing documents to disk: %w", err))
		}
		s.size += int64(len(b))
	}
	out := make([]deliver.Outcome, len(items))
	for i := range out {
		out[i] = deliver.Outcome{Delivered: true, Status: 200}
	}
	return out, nil
}

// failed cuts a file back to its last complete batch after a failed write,
// so that the batch, written again, does not follow a torn line.
func (s *NDJSON) failed(err error) error {
	if s.f != nil {
		if terr := s.f.Truncate(s.size); terr != nil {
			return fmt.Errorf("%w; cutting the torn batch: %v", err, terr)
		}
	}
	return err
}

// DeliverAll is Deliver: what is written is delivered.
func (s *NDJSON) DeliverAll(ctx context.Context, items []deliver.Item) ([]deliver.Outcome, error) {
	return s.Deliver(ctx, items)
}

// Close closes the output's file, if it has one.
func (s *NDJSON) Close() error {
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}

// DeadLetterFile keeps records that cannot be delivered when there is no
// dead-letter topic (sluice run): one JSON object per line, with the
// reason, fsynced before the records count as handled.
//
//	{"time":"…","status":400,"reason":"…","index":"…","topic":"logs-service",
//	 "key":"…","value":"the raw line","headers":{"sluice.type":"service",…}}
//
// A value that is not UTF-8 is written as value_base64 instead.
type DeadLetterFile struct {
	mu  sync.Mutex
	f   *os.File
	log *zap.Logger
}

// OpenDeadLetterFile appends dead letters to the file at path; a torn last
// line left by a crash is cut off (its batch comes again).
func OpenDeadLetterFile(path string, log *zap.Logger) (*DeadLetterFile, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	if _, err := cutTornLine(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &DeadLetterFile{f: f, log: log}, nil
}

type deadLetterLine struct {
	Time        time.Time         `json:"time"`
	Status      int               `json:"status"`
	Reason      string            `json:"reason"`
	Index       string            `json:"index,omitempty"`
	Topic       string            `json:"topic"`
	Key         string            `json:"key"`
	Value       *string           `json:"value,omitempty"`
	ValueBase64 []byte            `json:"value_base64,omitempty"`
	Headers     map[string]string `json:"headers"`
}

// Write appends dead letters to the file and syncs it, retrying a failure
// (a full disk) until it succeeds or ctx ends.
func (d *DeadLetterFile) Write(ctx context.Context, dead []deliver.DeadLetter) error {
	return backoff.Steady().Retry(ctx, d.log, "writing to the dead-letter file", func() error { return d.write(dead) })
}

func (d *DeadLetterFile) write(dead []deliver.DeadLetter) error {
	var b []byte
	now := time.Now().UTC()
	for _, dl := range dead {
		l := deadLetterLine{Time: now, Status: dl.Status, Reason: dl.Reason, Index: dl.Index,
			Topic: dl.Record.Topic, Key: string(dl.Record.Key), Headers: map[string]string{}}
		if utf8.Valid(dl.Record.Value) {
			v := string(dl.Record.Value)
			l.Value = &v
		} else {
			l.ValueBase64 = dl.Record.Value
		}
		for _, h := range dl.Record.Headers {
			l.Headers[h.Key] = string(h.Value)
		}
		j, err := json.Marshal(l)
		if err != nil {
			return fmt.Errorf("encoding dead letter: %w", err)
		}
		b = append(append(b, j...), '\n')
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.f.Write(b); err != nil {
		return fmt.Errorf("writing dead letters to %s: %w", d.f.Name(), err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("syncing dead letters to %s: %w", d.f.Name(), err)
	}
	return nil
}

// Close closes the file.
func (d *DeadLetterFile) Close() error { return d.f.Close() }

// Package tap is a live, sampled view of the events passing a stage of a
// running process: lines as the shipper reads them, documents as the
// aggregator builds them, dead letters as they are written. `sluice tap`
// reads it from the process's HTTP port (GET /tap, NDJSON).
//
// The stages call Line, Document and DeadLetter on their hot paths. While
// nobody taps a stage, each call is one atomic load: the hub is
// process-wide (Default), like the Prometheus registry, so that the stages
// need no wiring to reach it, and every pipeline a reload builds feeds the
// same taps.
package tap

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/event"
)

// Stage names, as /tap?stage= takes them.
const (
	StageLines       = "lines"
	StageDocuments   = "documents"
	StageDeadLetters = "dead_letters"
)

// Stages lists the stage names.
var Stages = []string{StageLines, StageDocuments, StageDeadLetters}

type stage int

const (
	lines stage = iota
	documents
	deadLetters
	numStages
)

func stageOf(name string) (stage, bool) {
	for i, s := range Stages {
		if s == name {
			return stage(i), true
		}
	}
	return 0, false
}

// Event is what a tap receives of one event, one JSON line.
type Event struct {
	Stage string    `json:"stage"`
	Time  time.Time `json:"@timestamp"`
	// From the shipper's wire record: all stages.
	Type    string            `json:"type,omitempty"`
	Service string            `json:"service,omitempty"`
	Node    string            `json:"node,omitempty"`
	Path    string            `json:"path,omitempty"`
	FileID  string            `json:"file_id,omitempty"`
	Offset  *int64            `json:"offset,omitempty"`
	Fields  map[string]string `json:"fields,omitempty"`
	Flags   []string          `json:"flags,omitempty"`
	// Line is the line as read (lines) or the record's value (dead letters).
	Line string `json:"line,omitempty"`
	// Documents: the index the document goes to, its id, and the
	// document as it is sent.
	Index    string          `json:"index,omitempty"`
	ID       string          `json:"id,omitempty"`
	Document json.RawMessage `json:"document,omitempty"`
	// Dead letters: the Kafka record's place, Elasticsearch's status (0:
	// never sent) and the reason.
	Topic     string `json:"topic,omitempty"`
	Partition *int32 `json:"partition,omitempty"`
	Status    *int   `json:"status,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Dropped, on a line of its own, counts the events that matched but
	// were not sent, as the client read too slowly.
	Dropped int64 `json:"dropped,omitempty"`

	parsed map[string]any // the document or JSON line, once a where filter read it
	tried  bool           // parsed was tried
}

// Hub hands events to the taps open on it.
type Hub struct {
	on   [numStages]atomic.Bool // a tap is open on the stage
	mu   sync.Mutex
	taps map[*Tap]struct{}
}

// NewHub returns a hub with no taps.
func NewHub() *Hub { return &Hub{taps: map[*Tap]struct{}{}} }

// Default is the process's hub, which the stages' hooks publish to.
var Default = NewHub()

// Line publishes a line the shipper read, before it is sent. ev.Line is
// copied.
func Line(ev *event.Event) {
	if Default.on[lines].Load() { // inlined: the whole cost while nobody taps
		publishLine(ev)
	}
}

//go:noinline
func publishLine(ev *event.Event) {
	Default.publish(lines, ev, func() *Event { return lineEvent(ev) })
}

// Document publishes a document the aggregator built, as encoded (src),
// and the index it goes to.
func Document(ev *event.Event, index string, src []byte) {
	if Default.on[documents].Load() {
		publishDocument(ev, index, src)
	}
}

//go:noinline
func publishDocument(ev *event.Event, index string, src []byte) {
	Default.publish(documents, ev, func() *Event { return documentEvent(ev, index, src) })
}

// Tapping reports whether dead letters are tapped, so that a stage calls
// DeadLetter for each only then.
func Tapping() bool { return Default.on[deadLetters].Load() }

// DeadLetter publishes a record on its way to the dead letters: the status
// Elasticsearch gave (0: never sent), the reason and the index it was for.
func DeadLetter(rec *kgo.Record, status int, reason, index string) {
	if !Default.on[deadLetters].Load() {
		return
	}
	ev, err := event.Decode(rec)
	if err != nil {
		ev = event.Event{Line: rec.Value} // malformed: only the value
	}
	Default.publish(deadLetters, &ev, func() *Event { return deadLetterEvent(&ev, rec, status, reason, index) })
}

// publish offers an event to every tap on s; make builds it, once, for
// the first tap that wants it.
func (h *Hub) publish(s stage, ev *event.Event, make func() *Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out *Event
	for t := range h.taps {
		if t.stage != s || !t.filter.matchEvent(ev) {
			continue
		}
		if out == nil {
			out = make()
		}
		if !t.filter.matchWhere(out) || !t.sample() {
			continue
		}
		t.offer(out)
	}
}

// Open starts a tap with f; events come on its channel until Close.
func (h *Hub) Open(f Filter) *Tap {
	s, _ := stageOf(f.Stage) // validated
	t := &Tap{hub: h, stage: s, filter: f, c: make(chan *Event, tapBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.taps[t] = struct{}{}
	h.on[s].Store(true)
	return t
}

// count counts the open taps.
func (h *Hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.taps)
}

// tapBuffer is how many events a tap holds for a slow client before it
// drops (and counts) the next ones: the pipeline never waits on a tap.
// tapBufferBytes bounds what they hold too: a multiline event or a
// document may be up to a megabyte.
const (
	tapBuffer      = 1024
	tapBufferBytes = 8 << 20
)

// Tap is one open view on a stage.
type Tap struct {
	hub    *Hub
	stage  stage
	filter Filter
	c      chan *Event
	// Under hub.mu.
	seen    int64 // events that matched, for the sample rate
	sent    int64 // events handed to c, for the limit
	done    bool  // the limit is reached: c is closed
	dropped atomic.Int64
	// held is the size of the events in c.
	held atomic.Int64
}

// Events returns the channel of the tap's events; it is closed once the
// limit is reached.
func (t *Tap) Events() <-chan *Event { return t.c }

// Dropped returns and resets the count of events dropped as the client
// read too slowly.
func (t *Tap) Dropped() int64 { return t.dropped.Swap(0) }

// sample reports whether the next matching event is taken: one in 1/rate,
// evenly spread, until the limit. Under hub.mu.
func (t *Tap) sample() bool {
	if t.done {
		return false
	}
	n := t.seen
	t.seen++
	rate := t.filter.Rate
	if rate <= 0 || rate >= 1 {
		return true
	}
	return int64(float64(n+1)*rate) > int64(float64(n)*rate)
}

// size is about what e holds in memory.
func (e *Event) size() int64 { return int64(len(e.Line)+len(e.Document)) + 512 }

// taken is called by the client for each event it took from Events.
func (t *Tap) taken(e *Event) { t.held.Add(-e.size()) }

// offer hands e to the client without waiting. Under hub.mu.
func (t *Tap) offer(e *Event) {
	n := e.size()
	if len(t.c) > 0 && t.held.Load()+n > tapBufferBytes {
		t.dropped.Add(1)
		return
	}
	select {
	case t.c <- e:
		t.held.Add(n)
		t.sent++
		if t.filter.Limit > 0 && t.sent >= int64(t.filter.Limit) {
			t.done = true
			close(t.c)
		}
	default:
		t.dropped.Add(1)
	}
}

// Close stops the tap.
func (t *Tap) Close() {
	h := t.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.taps[t]; !ok {
		return
	}
	delete(h.taps, t)
	if !t.done {
		t.done = true
		close(t.c)
	}
	for o := range h.taps {
		if o.stage == t.stage {
			return
		}
	}
	h.on[t.stage].Store(false)
}

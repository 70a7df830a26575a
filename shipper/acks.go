package shipper

import (
	"maps"
	"sync"
)

// ackTracker turns Kafka acknowledgements, which may complete out of order,
// into an in-order acknowledged offset for one file generation: the offset
// only moves over a line once every earlier line is acknowledged too.
type ackTracker struct {
	mu      sync.Mutex
	next    uint64 // sequence number of the next line sent
	base    uint64 // sequence number of pending[0]
	pending []pendingLine
	acked   int64
	// streams is, per stream of a container log joined into events, the
	// end of its last event acknowledged in order (registryEntry.Streams).
	streams map[string]int64
}

type pendingLine struct {
	end     int64
	done    bool
	streams []streamEnd // of the events sent, for a joined container log
	mark    lineCheck   // of the line ending at end, if the reader has it
}

// streamEnd is the end of the last event of a stream.
type streamEnd struct {
	stream string
	end    int64
}

func newAckTracker(offset int64) *ackTracker { return &ackTracker{acked: offset} }

// sent registers a line ending at end and returns its sequence number.
func (t *ackTracker) sent(end int64) uint64 { return t.sentMarked(end, nil, lineCheck{}) }

// sentMarked registers lines after which the registry may move to end,
// the ends of the events of each stream among them, and the mark of the
// line ending at end.
func (t *ackTracker) sentMarked(end int64, streams []streamEnd, m lineCheck) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = append(t.pending, pendingLine{end: end, streams: streams, mark: m})
	seq := t.next
	t.next++
	return seq
}

// ack marks line seq acknowledged. It returns the new in-order acknowledged
// offset and whether it moved.
func (t *ackTracker) ack(seq uint64) (int64, bool) {
	off, _, moved := t.ackMarked(seq)
	return off, moved
}

// ackMarked is ack, returning the mark of the line the offset moved to too
// (zero if it has none).
func (t *ackTracker) ackMarked(seq uint64) (off int64, m lineCheck, moved bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending[seq-t.base].done = true
	i := 0
	for i < len(t.pending) && t.pending[i].done {
		t.acked, m = t.pending[i].end, t.pending[i].mark
		for _, s := range t.pending[i].streams {
			if t.streams == nil {
				t.streams = map[string]int64{}
			}
			t.streams[s.stream] = max(t.streams[s.stream], s.end)
		}
		moved = true
		i++
	}
	if i > 0 {
		t.pending = t.pending[i:]
		t.base += uint64(i)
	}
	return t.acked, m, moved
}

// resumeStreams starts the streams' acknowledged ends from a registry
// entry's.
func (t *ackTracker) resumeStreams(streams map[string]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.streams = maps.Clone(streams)
}

// streamEnds returns the streams' acknowledged ends past the acknowledged
// offset (nil if none), and whether the tracker has any to say.
func (t *ackTracker) streamEnds() (map[string]int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.streams == nil {
		return nil, false
	}
	var out map[string]int64
	for s, end := range t.streams {
		if end <= t.acked {
			delete(t.streams, s)
			continue
		}
		if out == nil {
			out = map[string]int64{}
		}
		out[s] = end
	}
	return out, true
}

// outstanding is the number of lines sent and not yet acknowledged in order.
func (t *ackTracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// offset is the in-order acknowledged offset.
func (t *ackTracker) offset() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.acked
}

// sentTo is the end of the last line sent: the acknowledged offset, or
// past it what is in flight.
func (t *ackTracker) sentTo() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.pending); n > 0 {
		return t.pending[n-1].end
	}
	return t.acked
}

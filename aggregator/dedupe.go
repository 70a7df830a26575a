package aggregator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/parser"
)

// The duplicate check. A document's id is deterministic, so a re-delivered
// record overwrites itself (index) or gets a 409 (create), but only within
// the one index it is written to. Two index options write a re-delivery to
// another index: a dated name whose date came from a read time that
// changed (a line without its own time, re-read by the shipper after a
// crash across midnight, or an out-of-range time routed by it), and a data
// stream or rollover alias that rolled over in between (create goes to the
// new write index, 201). Elasticsearch checks ids per index only, so the
// aggregator looks records that may be re-deliveries up by id, across the
// name's dates or the whole stream, before writing them; what is found
// counts as delivered and is not written again.
//
// Which records are suspect, so that the check costs nothing in steady
// state:
//   - after a partition is assigned, its records below its end offset at
//     that moment: a previous owner may have indexed them and died before
//     committing;
//   - every record of `sluice replay`;
//   - lines the shipper flags resent (event.FlagResent): read again after a
//     shipper restart, they are new Kafka records that no offset marks.
//
// The flow marks each item's lookup target (deduper.lookup) and the lookup
// sink looks the marked items of each chunk up in one search per 1,000 ids
// before handing the rest to the bulk indexer.

// suspects says which records may already be indexed. Safe for concurrent
// use: the group's callbacks set it, the poll loop reads it.
type suspects struct {
	mu sync.Mutex
	// below holds, per assigned partition, the end offset it had when it
	// was assigned: records below it are suspect.
	below map[topicPartition]int64
	all   bool // replay: every record
	log   *zap.Logger
}

func newSuspects(log *zap.Logger) *suspects {
	return &suspects{below: make(map[topicPartition]int64), log: log}
}

// assigned is the group's OnPartitionsAssigned: it notes the end offsets
// of the new partitions. Until it returns no record of them is fetched. If
// the end offsets cannot be read within a minute, every record of the
// partitions is suspect until they are assigned again: slower, never a
// duplicate.
func (s *suspects) assigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	if len(assigned) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	topics := make([]string, 0, len(assigned))
	for t := range assigned {
		topics = append(topics, t)
	}
	var ends kadm.ListedOffsets
	err := retry(ctx, s.log, "reading the end offsets of assigned partitions", func() error {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var err error
		if ends, err = kadm.NewClient(cl).ListEndOffsets(lctx, topics...); err == nil {
			err = ends.Error()
		}
		return err
	})
	if err != nil {
		s.log.Warn("cannot read the end offsets of assigned partitions: all their records are looked up before they are written",
			zap.Error(err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, ps := range assigned {
		for _, p := range ps {
			end := int64(math.MaxInt64)
			if o, ok := ends.Lookup(t, p); ok && err == nil {
				end = o.Offset
			}
			s.below[topicPartition{t, p}] = end
		}
	}
}

// setAll makes every record suspect: for replay.
func (s *suspects) setAll() {
	s.mu.Lock()
	s.all = true
	s.mu.Unlock()
}

// suspect reports whether the record, or its event, may already be
// indexed.
func (s *suspects) suspect(rec *kgo.Record, ev *event.Event) bool {
	if ev.HasFlag(event.FlagResent) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all {
		return true
	}
	tp := topicPartition{rec.Topic, rec.Partition}
	end, ok := s.below[tp]
	if !ok {
		return false
	}
	if rec.Offset >= end {
		delete(s.below, tp) // offsets only grow: past it for good
		return false
	}
	return true
}

// deduper decides where a suspect record's document is looked up, and
// looks documents up.
type deduper struct {
	// kinds remembers which lookup targets are concrete indices (or do not
	// exist): see needed.
	kinds    targetKinds
	suspects *suspects
	on       bool // elasticsearch.dedupe
	index    *template.Template
	es       *elasticsearch.Client
	log      *zap.Logger
	metrics  dedupeMetrics
}

type dedupeMetrics struct {
	looked, found prometheus.Counter
	latency       prometheus.Histogram
}

func newDeduper(cfg Config, index *template.Template, es *elasticsearch.Client, reg prometheus.Registerer, log *zap.Logger) *deduper {
	m := dedupeMetrics{
		looked:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_dedupe_lookups_total", Help: "Documents of records that may be re-deliveries looked up by id before writing."}),
		found:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_dedupe_found_total", Help: "Looked-up documents found already indexed, and not written again."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_aggregator_dedupe_lookup_seconds", Help: "Duration of one lookup: refresh and search of up to 1,000 ids.", Buckets: prometheus.ExponentialBuckets(0.002, 2, 14)}),
	}
	reg.MustRegister(m.looked, m.found, m.latency)
	return &deduper{suspects: newSuspects(log), on: *cfg.Elasticsearch.Dedupe, index: index, es: es, log: log, metrics: m}
}

// lookup returns where the document of rec, to be written to index, must be
// looked up before it is, or "" when it need not be: for a dated index
// name, the name with '*' for its dates; otherwise the name itself, which
// for a data stream or alias covers every index behind it. Call before doc
// is recycled.
func (d *deduper) lookup(rec *kgo.Record, ev *event.Event, doc *parser.Doc, index string) string {
	if d == nil || !d.on || !d.suspects.suspect(rec, ev) {
		return ""
	}
	if d.index.HasDate() {
		return template.IndexName(d.index.RenderWildcard(indexLookup(ev, doc), template.IndexValue))
	}
	return index
}

// lookupBatch is how many ids one search asks for.
const lookupBatch = 1000

// maxTargetsBytes bounds the comma-joined targets of one search, for the
// length of its URL.
const maxTargetsBytes = 2048

// find returns the items of items[k] for k in which, looked up by id across
// their lookup targets, are already indexed. It retries until
// Elasticsearch answers or ctx ends.
func (d *deduper) find(ctx context.Context, items []item, which []int) (map[int]bool, error) {
	found, _, err := d.lookUp(ctx, items, which, func(fn func() error) error {
		return retry(ctx, d.log, "looking up documents that may be re-delivered", fn)
	})
	return found, err
}

// findOnce is find with one try per search: the positions whose search
// failed come back in failed, with the reason, instead of being retried
// here, so that the flow can let them wait like items of an index that
// fails (a red index fails its searches too).
func (d *deduper) findOnce(ctx context.Context, items []item, which []int) (found map[int]bool, failed map[int]error) {
	found, failed, _ = d.lookUp(ctx, items, which, nil)
	return found, failed
}

// lookUp looks the items at positions which up, calling each search
// through try (nil: once, failures noted in failed).
func (d *deduper) lookUp(ctx context.Context, items []item, which []int, try func(func() error) error) (found map[int]bool, failed map[int]error, err error) {
	found = make(map[int]bool)
	once := try == nil
	which, failed, err = d.needed(ctx, items, which, try)
	if err != nil {
		return nil, nil, err
	}
	if once {
		// One target per search, so that a target that fails (a red
		// index) fails the lookups of its own items only.
		which = slices.Clone(which)
		slices.SortStableFunc(which, func(a, b int) int { return strings.Compare(items[a].lookup, items[b].lookup) })
	}
	for len(which) > 0 {
		// One search: up to lookupBatch ids, over the targets they need.
		// An id is a hash of the line's node, file and offset, so finding
		// it in any of Sluice's indices means that line is delivered.
		var targets []string
		seen := map[string]bool{}
		size := 0
		n := 0
		for ; n < len(which) && n < lookupBatch; n++ {
			t := items[which[n]].lookup
			if !seen[t] {
				if len(targets) > 0 && (once || size+len(t)+1 > maxTargetsBytes) {
					break
				}
				seen[t] = true
				targets = append(targets, t)
				size += len(t) + 1
			}
		}
		batch := which[:n]
		which = which[n:]
		ids := make([]string, len(batch))
		for i, k := range batch {
			ids[i] = items[k].id
		}
		var hits map[string]bool
		search := func() error {
			var err error
			hits, err = d.search(ctx, strings.Join(targets, ","), ids)
			return err
		}
		if try == nil {
			if err := search(); err != nil {
				if failed == nil {
					failed = make(map[int]error)
				}
				for _, k := range batch {
					failed[k] = err
				}
				continue
			}
		} else if err := try(search); err != nil {
			return nil, nil, err
		}
		d.metrics.looked.Add(float64(len(batch)))
		for _, k := range batch {
			if hits[items[k].id] {
				found[k] = true
			}
		}
	}
	d.metrics.found.Add(float64(len(found)))
	return found, failed, nil
}

// search refreshes the targets, so that documents a previous owner indexed
// a moment ago are seen whatever their refresh_interval, and returns which
// of ids they hold.
func (d *deduper) search(ctx context.Context, targets string, ids []string) (map[string]bool, error) {
	start := time.Now()
	defer func() { d.metrics.latency.Observe(time.Since(start).Seconds()) }()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	refresh, err := d.es.Indices.Refresh(d.es.Indices.Refresh.WithContext(ctx), d.es.Indices.Refresh.WithIndex(targets),
		d.es.Indices.Refresh.WithIgnoreUnavailable(true), d.es.Indices.Refresh.WithAllowNoIndices(true))
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	err = lookupStatus("refresh", refresh)
	_, _ = io.Copy(io.Discard, refresh.Body)
	refresh.Body.Close()
	if err != nil {
		return nil, err
	}
	// A refresh answers 200 with failed shards while a shard moves; the
	// search then sees what it can, as it would anyway, so the shards are
	// not checked.
	body, _ := json.Marshal(map[string]any{
		"size": 2 * len(ids), "_source": false, "track_total_hits": false,
		"query": map[string]any{"ids": map[string]any{"values": ids}},
	})
	s := d.es.Search
	res, err := s(s.WithContext(ctx), s.WithIndex(targets), s.WithBody(strings.NewReader(string(body))),
		s.WithIgnoreUnavailable(true), s.WithAllowNoIndices(true), s.WithFilterPath("hits.hits._id", "_shards.failed"))
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer res.Body.Close()
	if err := lookupStatus("search", res); err != nil {
		return nil, err
	}
	var out struct {
		Shards struct {
			Failed int `json:"failed"`
		} `json:"_shards"`
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("search: decoding the answer: %w", err)
	}
	if out.Shards.Failed > 0 {
		// A shard that did not answer may hold the document: ask again.
		return nil, fmt.Errorf("search: %d shards failed", out.Shards.Failed)
	}
	hits := make(map[string]bool, len(out.Hits.Hits))
	for _, h := range out.Hits.Hits {
		hits[h.ID] = true
	}
	return hits, nil
}

// lookupStatus is nil for a 200, else an error that says what to fix for
// the statuses no retry cures.
func lookupStatus(what string, res *esapi.Response) error {
	if res.StatusCode == http.StatusOK {
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	err := fmt.Errorf("%s: %s: %s", what, res.Status(), msg)
	if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden {
		// Retried all the same: a re-delivery is never written unchecked.
		err = fmt.Errorf("%w; the duplicate check needs the read and maintenance privileges on the indices (or elasticsearch.dedupe: false)", err)
	}
	return err
}

// lookupSink looks a chunk's suspect items up before the sink writes the
// rest; found ones are delivered.
type lookupSink struct {
	sink
	d *deduper
}

// attempt is index for one try, as the flow delivers (bulkIndexer.attempt):
// suspect items whose lookup failed come back again (to wait, like those
// of a failing index), and the rest go to the sink's attempt, so that
// neither a failing lookup nor a failing index holds a worker.
func (s lookupSink) attempt(ctx context.Context, items []item) ([]outcome, error) {
	at, ok := s.sink.(interface {
		attempt(context.Context, []item) ([]outcome, error)
	})
	if !ok {
		return s.index(ctx, items)
	}
	var which []int
	for k := range items {
		if items[k].lookup != "" {
			which = append(which, k)
		}
	}
	if len(which) == 0 {
		return at.attempt(ctx, items)
	}
	found, failed := s.d.findOnce(ctx, items, which)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	out := make([]outcome, len(items))
	rest := make([]item, 0, len(items))
	var pos []int
	for k := range items {
		switch {
		case found[k]:
			out[k] = outcome{delivered: true}
		case failed[k] != nil:
			out[k] = outcome{again: true, status: http.StatusServiceUnavailable,
				reason: "looking up documents that may be re-delivered: " + failed[k].Error()}
		default:
			rest = append(rest, items[k])
			pos = append(pos, k)
		}
	}
	if len(rest) > 0 {
		res, err := at.attempt(ctx, rest)
		if err != nil {
			return nil, err
		}
		for i, k := range pos {
			out[k] = res[i]
		}
	}
	return out, nil
}

func (s lookupSink) index(ctx context.Context, items []item) ([]outcome, error) {
	var which []int
	for k := range items {
		if items[k].lookup != "" {
			which = append(which, k)
		}
	}
	if len(which) == 0 {
		return s.sink.index(ctx, items)
	}
	found, err := s.d.find(ctx, items, which)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return s.sink.index(ctx, items)
	}
	rest := make([]item, 0, len(items)-len(found))
	for k := range items {
		if !found[k] {
			rest = append(rest, items[k])
		}
	}
	res, err := s.sink.index(ctx, rest)
	if err != nil {
		return nil, err
	}
	out := make([]outcome, len(items))
	for k, i := 0, 0; k < len(items); k++ {
		if found[k] {
			out[k] = outcome{delivered: true}
			continue
		}
		out[k] = res[i]
		i++
	}
	return out, nil
}

// targetKinds caches what lookup targets are, for needed.
type targetKinds struct {
	mu    sync.Mutex
	known map[string]targetKind
}

type targetKind struct {
	needed bool // an alias, a data stream or a pattern: look up
	at     time.Time
}

// How long a target's kind is trusted: a concrete index stays one; a name
// that does not exist yet may become a data stream with its first write.
const (
	concreteTTL = time.Minute
	missingTTL  = 5 * time.Second
)

// needed returns the positions of which whose target needs a lookup: a
// pattern (dated names), an alias or a data stream, where a re-delivered
// record could land in another index than its first copy. A concrete
// index, or a name that does not exist, needs none: by its id the record
// lands on its first copy there (overwriting it, or 409 with create), or
// there is nothing to find. Resolving a name is a cluster-state call,
// cached; searching a red index is not needed for it. A failure to resolve
// is retried through try, or (try nil) noted in failed.
func (d *deduper) needed(ctx context.Context, items []item, which []int, try func(func() error) error) ([]int, map[int]error, error) {
	kinds := map[string]bool{}
	errs := map[string]error{}
	for _, k := range which {
		t := items[k].lookup
		if _, ok := kinds[t]; ok {
			continue
		}
		if _, ok := errs[t]; ok {
			continue
		}
		var need bool
		resolve := func() error {
			var err error
			need, err = d.targetNeedsLookup(ctx, t)
			return err
		}
		if try == nil {
			if err := resolve(); err != nil {
				errs[t] = err
				continue
			}
		} else if err := try(resolve); err != nil {
			return nil, nil, err
		}
		kinds[t] = need
	}
	var out []int
	var failed map[int]error
	for _, k := range which {
		t := items[k].lookup
		if err, ok := errs[t]; ok {
			if failed == nil {
				failed = make(map[int]error)
			}
			failed[k] = err
			continue
		}
		if kinds[t] {
			out = append(out, k)
		}
	}
	return out, failed, nil
}

// targetNeedsLookup resolves what target is (cached).
func (d *deduper) targetNeedsLookup(ctx context.Context, target string) (bool, error) {
	if strings.ContainsAny(target, "*,") {
		return true, nil
	}
	now := time.Now()
	d.kinds.mu.Lock()
	k, ok := d.kinds.known[target]
	d.kinds.mu.Unlock()
	if ok && now.Before(k.at) {
		return k.needed, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := d.es.Indices.ResolveIndex([]string{target}, d.es.Indices.ResolveIndex.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("resolving %s: %w", target, err)
	}
	defer res.Body.Close()
	ttl := concreteTTL
	var needed bool
	switch {
	case res.StatusCode == http.StatusNotFound:
		ttl = missingTTL
	case res.IsError():
		return false, fmt.Errorf("resolving %s: %s", target, res.Status())
	default:
		var r struct {
			Indices []struct {
				Name string `json:"name"`
			} `json:"indices"`
		}
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			return false, fmt.Errorf("resolving %s: %w", target, err)
		}
		needed = len(r.Indices) != 1 || r.Indices[0].Name != target
	}
	d.kinds.mu.Lock()
	if d.kinds.known == nil || len(d.kinds.known) > 4096 {
		d.kinds.known = make(map[string]targetKind)
	}
	d.kinds.known[target] = targetKind{needed: needed, at: now.Add(ttl)}
	d.kinds.mu.Unlock()
	return needed, nil
}

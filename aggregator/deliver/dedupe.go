package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/backoff"
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
// The flow marks each item's lookup target (process.lookup) and the lookup
// sink looks the marked items of each chunk up in one search per 1,000 ids
// before handing the rest to the bulk indexer.

// deduper looks documents up (process.lookup decides where).
type deduper struct {
	// kinds remembers which lookup targets are concrete indices (or do not
	// exist): see needed.
	kinds   targetKinds
	es      *elasticsearch.Client
	log     *zap.Logger
	metrics dedupeMetrics
}

type dedupeMetrics struct {
	looked, found prometheus.Counter
	latency       prometheus.Histogram
}

func newDeduper(es *elasticsearch.Client, reg prometheus.Registerer, log *zap.Logger) *deduper {
	m := dedupeMetrics{
		looked:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_dedupe_lookups_total", Help: "Documents of records that may be re-deliveries looked up by id before writing."}),
		found:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_dedupe_found_total", Help: "Looked-up documents found already indexed, and not written again."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_aggregator_dedupe_lookup_seconds", Help: "Duration of one lookup: refresh and search of up to 1,000 ids.", Buckets: prometheus.ExponentialBuckets(0.002, 2, 14)}),
	}
	reg.MustRegister(m.looked, m.found, m.latency)
	return &deduper{es: es, log: log, metrics: m}
}

// lookupBatch is how many ids one search asks for.
const lookupBatch = 1000

// maxTargetsBytes bounds the comma-joined targets of one search, for the
// length of its URL.
const maxTargetsBytes = 2048

// find returns the items of items[k] for k in which, looked up by id across
// their lookup targets, are already indexed. It retries until
// Elasticsearch answers or ctx ends.
func (d *deduper) find(ctx context.Context, items []Item, which []int) (map[int]bool, error) {
	found, _, err := d.lookUp(ctx, items, which, func(fn func() error) error {
		return backoff.Steady().Retry(ctx, d.log, "looking up documents that may be re-delivered", fn)
	})
	return found, err
}

// findOnce is find with one try per search: the positions whose search
// failed come back in failed, with the reason, instead of being retried
// here, so that the flow can let them wait like items of an index that
// fails (a red index fails its searches too).
func (d *deduper) findOnce(ctx context.Context, items []Item, which []int) (found map[int]bool, failed map[int]error) {
	found, failed, _ = d.lookUp(ctx, items, which, nil)
	return found, failed
}

// lookUp looks the items at positions which up, calling each search
// through try (nil: once, failures noted in failed).
func (d *deduper) lookUp(ctx context.Context, items []Item, which []int, try func(func() error) error) (found map[int]bool, failed map[int]error, err error) {
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
		slices.SortStableFunc(which, func(a, b int) int { return strings.Compare(items[a].Lookup, items[b].Lookup) })
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
			t := items[which[n]].Lookup
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
			ids[i] = items[k].ID
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
			if hits[items[k].ID] {
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

// Lookup is the Elasticsearch sink: it looks a chunk's suspect items up
// before the bulk indexer writes the rest; found ones are delivered.
type Lookup struct {
	bulk *Bulk
	d    *deduper
}

// NewLookup puts the duplicate check in front of bulk; its metrics go to
// reg.
func NewLookup(bulk *Bulk, reg prometheus.Registerer, log *zap.Logger) *Lookup {
	return &Lookup{bulk: bulk, d: newDeduper(bulk.es, reg, log)}
}

// Deliver is DeliverAll for one try, as the flow delivers (Bulk.Deliver):
// suspect items whose lookup failed come back again (to wait, like those
// of a failing index), and the rest go to the bulk indexer's Deliver, so
// that neither a failing lookup nor a failing index holds a worker.
func (s *Lookup) Deliver(ctx context.Context, items []Item) ([]Outcome, error) {
	var which []int
	for k := range items {
		if items[k].Lookup != "" {
			which = append(which, k)
		}
	}
	if len(which) == 0 {
		return s.bulk.Deliver(ctx, items)
	}
	found, failed := s.d.findOnce(ctx, items, which)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	out := make([]Outcome, len(items))
	rest := make([]Item, 0, len(items))
	var pos []int
	for k := range items {
		switch {
		case found[k]:
			out[k] = Outcome{Delivered: true}
		case failed[k] != nil:
			out[k] = Outcome{Again: true, Status: http.StatusServiceUnavailable,
				Reason: "looking up documents that may be re-delivered: " + failed[k].Error()}
		default:
			rest = append(rest, items[k])
			pos = append(pos, k)
		}
	}
	if len(rest) > 0 {
		res, err := s.bulk.Deliver(ctx, rest)
		if err != nil {
			return nil, err
		}
		for i, k := range pos {
			out[k] = res[i]
		}
	}
	return out, nil
}

// DeliverAll looks the suspect items up, retrying until Elasticsearch
// answers, and has the bulk indexer deliver the rest (Bulk.DeliverAll).
func (s *Lookup) DeliverAll(ctx context.Context, items []Item) ([]Outcome, error) {
	var which []int
	for k := range items {
		if items[k].Lookup != "" {
			which = append(which, k)
		}
	}
	if len(which) == 0 {
		return s.bulk.DeliverAll(ctx, items)
	}
	found, err := s.d.find(ctx, items, which)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return s.bulk.DeliverAll(ctx, items)
	}
	rest := make([]Item, 0, len(items)-len(found))
	for k := range items {
		if !found[k] {
			rest = append(rest, items[k])
		}
	}
	res, err := s.bulk.DeliverAll(ctx, rest)
	if err != nil {
		return nil, err
	}
	out := make([]Outcome, len(items))
	for k, i := 0, 0; k < len(items); k++ {
		if found[k] {
			out[k] = Outcome{Delivered: true}
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
func (d *deduper) needed(ctx context.Context, items []Item, which []int, try func(func() error) error) ([]int, map[int]error, error) {
	kinds := map[string]bool{}
	errs := map[string]error{}
	for _, k := range which {
		t := items[k].Lookup
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
		t := items[k].Lookup
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

package deliver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/backoff"
	"github.com/sluicelog/sluice/internal/telemetry"
)

// Item is one document on its way to Elasticsearch.
type Item struct {
	Index  string
	ID     string
	Source []byte // the document, JSON; nil once delivered
	// Record is the Kafka record the document came from, for its dead
	// letter; nil once delivered.
	Record *kgo.Record
	// RecBytes is that record's weight against the flow's budget.
	RecBytes int
	// Read is when the shipper read the line (zero if unknown).
	Read time.Time
	// Lookup, when set, is where the document may already be indexed: it
	// is looked up by id there before it is written (see dedupe.go).
	Lookup string
}

// Outcome is what became of an item.
type Outcome struct {
	Delivered bool
	// Again: not delivered yet, for a reason that passes (429, 5xx, a
	// cluster block, a failed request); the item is to be sent again
	// later. Only Deliver returns it.
	Again  bool
	Status int
	Reason string
}

// Bulk sends items with the bulk API and handles each item's result:
// success and 409 (already there, by its deterministic id) are delivered;
// 429 and 5xx are retried for those items only, with backoff and jitter;
// a 413 splits the request; other statuses are final rejections, for the
// dead-letter topic.
type Bulk struct {
	es       *elasticsearch.Client
	action   string
	maxBytes int
	retryMax time.Duration
	log      *zap.Logger
	metrics  *Metrics
	health   *esHealth
	// logEvery rate-limits the warnings of failures that repeat per item.
	logEvery *telemetry.Every
}

// NewBulk returns the bulk indexer of es for a validated cfg; logEvery
// rate-limits its warnings.
func NewBulk(es *elasticsearch.Client, cfg ElasticsearchConfig, m *Metrics, log *zap.Logger, logEvery *telemetry.Every) *Bulk {
	return &Bulk{es: es, action: cfg.Action, maxBytes: cfg.BulkBytes,
		retryMax: cfg.RetryMax, log: log, metrics: m, health: &esHealth{}, logEvery: logEvery}
}

// Health returns when Elasticsearch last accepted a document (zero:
// never since the start) and its standing refusal of bulk requests (400,
// 401, 403), nil when it took the last one.
func (b *Bulk) Health() (lastDelivered time.Time, refused error) { return b.health.state() }

// esHealth is what the bulk requests say about Elasticsearch accepting
// documents, for readiness and the progress watchdog.
type esHealth struct {
	mu            sync.Mutex
	lastDelivered time.Time // last item accepted
	refused       error     // the last request's refusal (400, 401, 403, ...), nil once one is accepted
}

func (h *esHealth) delivered() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.lastDelivered = time.Now()
	h.mu.Unlock()
}

func (h *esHealth) setRefused(err error) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.refused = err
	h.mu.Unlock()
}

// state returns when an item was last accepted and the standing refusal.
func (h *esHealth) state() (lastDelivered time.Time, refused error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastDelivered, h.refused
}

// shardWait is how long Elasticsearch waits for an unavailable primary
// before answering an item 503 (its default, a minute, would hold every
// worker that took a document of a red index for that long before the
// index is known to fail and its documents wait apart).
const shardWait = 10 * time.Second

// passing reports whether an item's failure passes by itself, so that the
// item is sent again rather than dead-lettered: 429 and 5xx; a cluster
// block (index.blocks.write, a disk watermark's read_only_allow_delete:
// 403 cluster_block_exception), which an operator lifts; a rejected
// execution (a full write queue), whatever its status.
func passing(status int, errType string) bool {
	return status == http.StatusTooManyRequests || status >= 500 ||
		errType == "cluster_block_exception" || errType == "es_rejected_execution_exception"
}

// DeliverAll delivers items and returns each one's outcome, retrying until
// every item is delivered or finally rejected, or ctx is done.
func (b *Bulk) DeliverAll(ctx context.Context, items []Item) ([]Outcome, error) {
	out := make([]Outcome, len(items))
	todo := make([]int, len(items))
	for i := range todo {
		todo[i] = i
	}
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt > 0 {
			b.metrics.retries.Add(float64(len(todo)))
			if err := b.retry().Wait(ctx, attempt); err != nil {
				return nil, err
			}
		}
		var retry []int
		for _, chunk := range b.chunks(items, todo) {
			r, err := b.send(ctx, items, chunk, out)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				b.warn("request", "bulk request failed; retrying", zap.Int("items", len(chunk)), zap.Error(err))
				retry = append(retry, chunk...)
				continue
			}
			retry = append(retry, r...)
		}
		todo = retry
	}
	return out, nil
}

// Deliver sends items once and returns each one's outcome: delivered,
// rejected for good, or again (429, 5xx, a cluster block, or the request
// failed) for the caller to send later. Unlike DeliverAll, it does not
// hold on to items that keep failing, so that they do not hold a worker;
// an error is returned only when ctx ends.
func (b *Bulk) Deliver(ctx context.Context, items []Item) ([]Outcome, error) {
	out := make([]Outcome, len(items))
	all := make([]int, len(items))
	for i := range all {
		all[i] = i
	}
	for _, chunk := range b.chunks(items, all) {
		if _, err := b.send(ctx, items, chunk, out); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			b.warn("request", "bulk request failed; its documents wait and are sent again", zap.Int("items", len(chunk)), zap.Error(err))
			for _, i := range chunk {
				out[i] = Outcome{Again: true, Reason: err.Error()}
			}
		}
	}
	return out, nil
}

// refused records the outcome of a whole request: err for one Elasticsearch
// answered with a status that no retry of the same request cures by itself
// (400, 401, 403: a proxy in the way, credentials refused or lacking the
// index privilege), nil for a 200. Such requests are still retried, for an
// operator may fix the cause without restarting; but it is logged as an
// error (once a minute), fails readiness, and sets
// sluice_aggregator_elasticsearch_refused.
func (b *Bulk) refused(err error) {
	if err == nil {
		b.health.setRefused(nil)
		b.metrics.refused.Set(0)
		return
	}
	b.health.setRefused(err)
	b.metrics.refused.Set(1)
	if ok, n := b.logEvery.Allow("refused"); ok {
		b.log.Error("elasticsearch refuses bulk requests; retrying, but nothing is indexed until the cause is fixed (credentials, privileges, address)",
			zap.Error(err), zap.Int("suppressed", n))
	}
}

// warn logs a warning at most once a minute per key.
func (b *Bulk) warn(key, msg string, fields ...zap.Field) {
	if ok, n := b.logEvery.Allow(key); ok {
		b.log.Warn(msg, append(fields, zap.Int("suppressed", n))...)
	}
}

// retry is the pause between attempts: Retry up to retryMax.
func (b *Bulk) retry() backoff.Policy { return Retry(b.retryMax) }

// chunks splits the items at positions todo into requests of at most
// maxBytes.
func (b *Bulk) chunks(items []Item, todo []int) [][]int {
	var out [][]int
	var cur []int
	size := 0
	for _, i := range todo {
		n := BulkSize(&items[i])
		if len(cur) > 0 && size+n > b.maxBytes {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, i)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

type bulkResponse struct {
	Errors bool                          `json:"errors"`
	Items  []map[string]bulkItemResponse `json:"items"`
}

type bulkItemResponse struct {
	Status int `json:"status"`
	Error  *struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"error"`
}

// send posts one bulk request and records final outcomes in out; it returns
// the positions to retry.
func (b *Bulk) send(ctx context.Context, items []Item, chunk []int, out []Outcome) ([]int, error) {
	var body bytes.Buffer
	size := 0
	for _, i := range chunk {
		size += len(items[i].Source) + len(items[i].Index) + len(items[i].ID) + 48
	}
	body.Grow(size)
	for _, i := range chunk {
		WriteAction(&body, b.action, items[i].Index, items[i].ID)
		body.Write(items[i].Source)
		body.WriteByte('\n')
	}
	start := time.Now()
	b.metrics.bulkInFlight.Inc()
	// Only what the outcomes need comes back: a bulk response otherwise
	// repeats every item's index, id, version and shards.
	res, err := b.es.Bulk(bytes.NewReader(body.Bytes()), b.es.Bulk.WithContext(ctx), b.es.Bulk.WithTimeout(shardWait),
		b.es.Bulk.WithFilterPath("took", "errors", "items.*.status", "items.*.error.type", "items.*.error.reason"))
	b.metrics.bulkInFlight.Dec()
	b.metrics.bulkLatency.Observe(time.Since(start).Seconds())
	if err != nil {
		b.metrics.bulkRequests.WithLabelValues("error").Inc()
		return nil, fmt.Errorf("bulk request: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusRequestEntityTooLarge && len(chunk) > 1 {
		b.metrics.bulkRequests.WithLabelValues("413").Inc()
		half := len(chunk) / 2
		r1, err := b.send(ctx, items, chunk[:half], out)
		if err != nil {
			return nil, err
		}
		r2, err := b.send(ctx, items, chunk[half:], out)
		if err != nil {
			return nil, err
		}
		return append(r1, r2...), nil
	}
	if res.StatusCode != http.StatusOK {
		b.metrics.bulkRequests.WithLabelValues(fmt.Sprint(res.StatusCode)).Inc()
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		if res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500 {
			b.refused(nil) // answered: passing, not refusing
			return nil, fmt.Errorf("bulk request: status %d: %s", res.StatusCode, strings.TrimSpace(string(msg)))
		}
		if res.StatusCode == http.StatusRequestEntityTooLarge {
			out[chunk[0]] = Outcome{Status: res.StatusCode, Reason: "document larger than http.max_content_length"}
			return nil, nil
		}
		err := fmt.Errorf("bulk request: status %d: %s", res.StatusCode, strings.TrimSpace(string(msg)))
		b.refused(err)
		return nil, err
	}
	b.metrics.bulkRequests.WithLabelValues("200").Inc()
	b.refused(nil)
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("reading bulk response: %w", err)
	}
	if allSucceeded(data) {
		for _, i := range chunk {
			out[i] = Outcome{Delivered: true, Status: http.StatusOK}
		}
		b.metrics.indexed.Add(float64(len(chunk)))
		b.health.delivered()
		return nil, nil
	}
	var br bulkResponse
	if err := json.Unmarshal(data, &br); err != nil {
		return nil, fmt.Errorf("decoding bulk response: %w", err)
	}
	if len(br.Items) != len(chunk) {
		return nil, fmt.Errorf("bulk response has %d items for %d requests", len(br.Items), len(chunk))
	}
	var retry []int
	for k, i := range chunk {
		var r bulkItemResponse
		for _, v := range br.Items[k] {
			r = v
		}
		switch {
		case r.Status >= 200 && r.Status < 300:
			out[i] = Outcome{Delivered: true, Status: r.Status}
			b.metrics.indexed.Inc()
			b.health.delivered()
		case r.Status == http.StatusConflict:
			out[i] = Outcome{Delivered: true, Status: r.Status}
			b.metrics.itemErrors.WithLabelValues("409").Inc()
		default:
			b.metrics.itemErrors.WithLabelValues(fmt.Sprint(r.Status)).Inc()
			o := Outcome{Status: r.Status}
			errType := ""
			if r.Error != nil {
				errType = r.Error.Type
				o.Reason = r.Error.Type + ": " + r.Error.Reason
			}
			if passing(r.Status, errType) {
				o.Again = true
				retry = append(retry, i)
			}
			out[i] = o
		}
	}
	return retry, nil
}

// allSucceeded reports whether a bulk response says that no item failed
// ("errors":false, before the items), so that its items need not be read.
func allSucceeded(resp []byte) bool {
	head := resp
	if i := bytes.Index(resp, []byte(`"items"`)); i >= 0 {
		head = resp[:i]
	}
	return bytes.Contains(head, []byte(`"errors":false`))
}

// WriteAction writes a bulk action line; index names and ids are made of
// characters that need no JSON escaping, but are escaped anyway.
func WriteAction(buf *bytes.Buffer, action, index, id string) {
	buf.WriteString(`{"`)
	buf.WriteString(action)
	buf.WriteString(`":{"_index":`)
	writeJSONString(buf, index)
	buf.WriteString(`,"_id":`)
	writeJSONString(buf, id)
	buf.WriteString("}}\n")
}

func writeJSONString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always marshals
	buf.Write(b)
}

// BulkSize is what an item adds to a bulk request, as the bulk indexer
// counts it, so that a chunk of bulk_bytes is sent as one request.
func BulkSize(it *Item) int {
	return len(it.Source) + len(it.Index) + len(it.ID) + 64
}

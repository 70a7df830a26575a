package aggregator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/internal/event"
)

// idsPerSearch is how many document ids one search asks for: well under
// Elasticsearch's max_result_window (10,000) and its max_terms_count.
const idsPerSearch = 1000

// Indexed returns which of ids (document ids) Elasticsearch holds in the
// indices index names (a pattern such as logs-*), for `sluice reconcile`.
func Indexed(ctx context.Context, cfg Config, index string, ids []string, log *zap.Logger) (map[string]bool, error) {
	es, err := deliver.NewESClient(cfg.Elasticsearch, log)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	found := make(map[string]bool, len(ids))
	for len(ids) > 0 {
		batch := ids[:min(len(ids), idsPerSearch)]
		ids = ids[len(batch):]
		body, err := json.Marshal(map[string]any{
			"size": len(batch), "_source": false,
			"query": map[string]any{"ids": map[string]any{"values": batch}},
		})
		if err != nil {
			return nil, err
		}
		res, err := es.Search(es.Search.WithContext(ctx), es.Search.WithIndex(index), es.Search.WithBody(bytes.NewReader(body)),
			es.Search.WithIgnoreUnavailable(true), es.Search.WithAllowNoIndices(true), es.Search.WithFilterPath("hits.hits._id"))
		if err != nil {
			return nil, fmt.Errorf("searching %s: %w", index, err)
		}
		data, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("searching %s: %w", index, err)
		}
		if res.IsError() {
			return nil, fmt.Errorf("searching %s: %s: %s", index, res.Status(), bytes.TrimSpace(data))
		}
		var out struct {
			Hits struct {
				Hits []struct {
					ID string `json:"_id"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("searching %s: %w", index, err)
		}
		for _, h := range out.Hits.Hits {
			found[h.ID] = true
		}
	}
	return found, nil
}

// DeadLettered returns the document ids of the records in the dead-letter
// topic, read from its start to its end, for `sluice reconcile`.
func DeadLettered(ctx context.Context, cfg Config, log *zap.Logger) (map[string]bool, error) {
	security, err := cfg.Kafka.Security.Opts(log)
	if err != nil {
		return nil, err
	}
	topic := cfg.Kafka.DeadLetterTopic
	cl, err := kgo.NewClient(append(security, kgo.SeedBrokers(cfg.Kafka.Brokers...),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	left := map[int32]int64{} // partitions still to read, to their end offset
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	ids := map[string]bool{}
	for len(left) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var errs []error
		fetches.EachError(func(t string, p int32, err error) { errs = append(errs, fmt.Errorf("%s/%d: %w", t, p, err)) })
		if len(errs) > 0 {
			return nil, fmt.Errorf("reading %s: %w", topic, errors.Join(errs...))
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if ev, err := event.Decode(r); err == nil {
				ids[ev.DocID()] = true
			}
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	return ids, nil
}

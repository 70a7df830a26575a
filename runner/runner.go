// Package runner is `sluice run`: the shipper and the aggregator's
// processing in one process, joined by an in-process queue instead of
// Kafka, for single machines and for trying Sluice without a Kafka.
//
// Data flows one way: harvesters publish each line, as the same wire record
// it would be in Kafka, onto a queue bounded by bytes; the consumer takes
// batches and delivers them through the aggregator's stages to
// Elasticsearch, an NDJSON file or standard output. Acknowledgements flow
// back the same way: once a batch is delivered (or dead-lettered to the
// dead-letter file), each record's ack reaches its file's ack tracker, and
// only then can the shipper's registry move past the line.
package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/backoff"
	"github.com/sluicelog/sluice/internal/queue"
	"github.com/sluicelog/sluice/internal/telemetry"
	"github.com/sluicelog/sluice/shipper"
)

// Runner runs a shipper into the aggregator's stages, through an
// in-process queue.
type Runner struct {
	cfg     Config
	output  string
	log     *zap.Logger
	queue   *queue.Queue
	shipper *shipper.Shipper
	stages  *stages
	out     *NDJSON // nil for Elasticsearch
	dead    *DeadLetterFile
}

// New validates cfg and prepares a runner; Run starts it.
func New(cfg Config, reg prometheus.Registerer, log *zap.Logger) (_ *Runner, err error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	output, _ := cfg.OutputKind() // validated
	r := &Runner{cfg: cfg, output: output, log: log.Named("runner"), queue: queue.New(cfg.Queue.MaxBytes)}
	defer func() {
		if err != nil {
			r.close() // what was opened before the failure
		}
	}()
	switch output {
	case OutputFile:
		if r.out, err = NewNDJSONFile(cfg.Output.File.Path); err != nil {
			return nil, fmt.Errorf("output.file.path: %w", err)
		}
	case OutputStdout:
		r.out = NewNDJSONWriter(os.Stdout)
	}
	alog := log.Named("aggregator")
	if r.dead, err = OpenDeadLetterFile(cfg.DeadLetterFile, alog.Named("deliver")); err != nil {
		return nil, fmt.Errorf("dead_letter_file: %w", err)
	}
	if r.stages, err = newStages(cfg.aggregatorConfig(), r.out, r.dead, reg, alog); err != nil {
		return nil, err
	}
	if r.shipper, err = shipper.New(cfg.Config, reg, log, shipper.WithPublisher(newQueuePublisher(r.queue))); err != nil {
		return nil, err
	}
	registerQueueMetrics(reg, r.queue)
	return r, nil
}

// registerQueueMetrics exports the queue's fill level.
func registerQueueMetrics(reg prometheus.Registerer, q *queue.Queue) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_run_queue_records", Help: "Records in the in-process queue of sluice run."},
			func() float64 { n, _ := q.Len(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_run_queue_bytes", Help: "Bytes of records in the in-process queue of sluice run."},
			func() float64 { _, b := q.Len(); return float64(b) }),
	)
}

// AddChecks registers the readiness check of Elasticsearch, when documents
// go there.
func (r *Runner) AddChecks(srv *telemetry.Server) {
	r.shipper.AddChecks(srv) // shipper_progress: lines waiting, none delivered
	r.stages.addChecks(srv)
}

// Run ships until ctx is done. Then the shipper stops reading and waits up
// to shutdown_timeout for what it published to be delivered, while the
// consumer keeps delivering; the registry is written, and only then does
// the consumer stop.
func (r *Runner) Run(ctx context.Context) error {
	defer r.close()
	r.log.Info("sluice run starting", zap.String("output", r.output), zap.Int64("queue_max_bytes", r.cfg.Queue.MaxBytes),
		zap.String("dead_letter_file", r.cfg.DeadLetterFile))
	shipCtx, stopShipping := context.WithCancel(ctx)
	defer stopShipping()
	// The consumer outlives ctx: it delivers what the shipper still waits
	// for at shutdown.
	consumeCtx, stopConsuming := context.WithCancel(context.Background())
	defer stopConsuming()
	consumed := make(chan error, 1)
	go func() {
		err := r.consume(consumeCtx)
		if err != nil {
			stopShipping() // nothing would be delivered any more
		}
		consumed <- err
	}()
	errShip := r.shipper.Run(shipCtx)
	r.queue.Close()
	stopConsuming() // everything acknowledged, or shutdown_timeout passed
	errConsume := <-consumed
	r.log.Info("sluice run stopped")
	return errors.Join(errShip, errConsume)
}

// consume delivers batches from the queue and acknowledges their records,
// until the queue is closed and empty or ctx ends.
func (r *Runner) consume(ctx context.Context) error {
	if err := r.stages.prepare(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	records := make([]*kgo.Record, 0, r.cfg.Queue.Batch)
	for {
		msgs, err := r.queue.Take(ctx, r.cfg.Queue.Batch)
		if errors.Is(err, queue.ErrClosed) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		records = records[:0]
		for _, m := range msgs {
			records = append(records, m.Record)
		}
		if !r.deliver(ctx, records) {
			return nil // unacknowledged: read again at the next start
		}
		for _, m := range msgs {
			if m.Ack != nil {
				m.Ack()
			}
		}
	}
}

// deliver processes a batch until it is delivered, retrying failures such
// as a full disk with backoff; it returns false if ctx ended first.
func (r *Runner) deliver(ctx context.Context, records []*kgo.Record) bool {
	for attempt := 0; ; attempt++ {
		err := r.stages.process(ctx, records)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		pause := deliverRetry.Delay(attempt)
		r.log.Error("delivering a batch failed; retrying", zap.Int("records", len(records)),
			zap.Duration("pause", pause), zap.Error(err))
		if backoff.Sleep(ctx, pause) != nil {
			return false
		}
	}
}

// deliverRetry is the pause between attempts to deliver a batch.
var deliverRetry = backoff.Policy{Initial: 100 * time.Millisecond, Max: 10 * time.Second}

func (r *Runner) close() {
	if r.out != nil {
		if err := r.out.Close(); err != nil {
			r.log.Error("closing output", zap.Error(err))
		}
	}
	if r.dead != nil {
		if err := r.dead.Close(); err != nil {
			r.log.Error("closing dead-letter file", zap.Error(err))
		}
	}
}

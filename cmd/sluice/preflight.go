package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/internal/kafkaclient"
	"github.com/sluicelog/sluice/runner"
	"github.com/sluicelog/sluice/shipper"
)

// A reload's preflight tries, while the running pipeline goes on, what can
// keep the new configuration's pipeline from starting once the running one
// is stopped: its Kafka and Elasticsearch answering and taking its
// credentials (and its index template), its registry and files writable.
// What the configuration's validation checks already (GeoIP databases,
// certificates) is not tried again.

func shipperPreflight(cfg shipper.Config) func(context.Context, *zap.Logger) error {
	return func(ctx context.Context, log *zap.Logger) error {
		if err := writableDir("registry", cfg.Registry); err != nil {
			return err
		}
		return kafkaAnswers(ctx, cfg.Kafka.Brokers, &cfg.Kafka.Security, log)
	}
}

func aggregatorPreflight(cfg aggregator.Config) func(context.Context, *zap.Logger) error {
	return func(ctx context.Context, log *zap.Logger) error {
		if err := kafkaAnswers(ctx, cfg.Kafka.Brokers, &cfg.Kafka.Security, log); err != nil {
			return err
		}
		return templateInstalls(ctx, cfg.Elasticsearch)
	}
}

func runPreflight(cfg runner.Config) func(context.Context, *zap.Logger) error {
	return func(ctx context.Context, _ *zap.Logger) error {
		if err := writableDir("registry", cfg.Registry); err != nil {
			return err
		}
		if err := appendable("dead_letter_file", cfg.DeadLetterFile); err != nil {
			return err
		}
		switch kind, _ := cfg.OutputKind(); kind {
		case runner.OutputFile:
			return appendable("output.file.path", cfg.Output.File.Path)
		case runner.OutputElasticsearch:
			return templateInstalls(ctx, cfg.Elasticsearch)
		}
		return nil
	}
}

// kafkaAnswers connects to brokers as the pipeline would, and fails if
// they refuse the TLS or SASL settings or none answers.
func kafkaAnswers(ctx context.Context, brokers []string, security *kafkaclient.Config, log *zap.Logger) error {
	opts, err := security.Opts(log)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(brokers...))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	if err := security.Check(ctx, cl, zap.NewNop()); err != nil {
		return err
	}
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka.brokers %v: no broker answered: %w", brokers, err)
	}
	return nil
}

// templateInstalls installs the index template, when the configuration
// has Sluice install it: Elasticsearch answers, takes the credentials and
// the template.
func templateInstalls(ctx context.Context, cfg aggregator.ElasticsearchConfig) error {
	if cfg.Template != nil && !*cfg.Template {
		return nil
	}
	if _, err := aggregator.InstallTemplate(ctx, cfg); err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return fmt.Errorf("elasticsearch: installing the index template: %w", err)
	}
	return nil
}

// writableDir checks that files can be created in dir, made if missing.
func writableDir(key, dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	f, err := os.CreateTemp(dir, ".reload-check-*")
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// appendable checks that path can be opened for appending, as the
// output and dead-letter files are (only their owner may read them).
func appendable(key, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return f.Close()
}

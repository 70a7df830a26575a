package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Topic is a topic Sluice writes to and creates when it is missing.
type Topic struct {
	Name              string
	Partitions        int32 // -1: the broker's default
	ReplicationFactor int16 // -1: the broker's default
	// MaxMessageBytes is the max.message.bytes a topic Sluice creates is
	// given: the largest record batch it must take.
	MaxMessageBytes int32
}

// PreparedTopic is what EnsureTopic learnt of a topic.
type PreparedTopic struct {
	// Created: Sluice made it, with its MaxMessageBytes.
	Created bool
	// MaxMessageBytes is the topic's max.message.bytes: Topic's for one
	// created, else as read from Kafka; 0 when LimitErr says why it could
	// not be read (the caller then keeps to its own limit).
	MaxMessageBytes int32
	LimitErr        error
}

// opTimeout bounds each admin request of EnsureTopic.
const opTimeout = 10 * time.Second

// EnsureTopic creates t unless it exists, in which case it reads its
// max.message.bytes: a topic made beforehand (by an operator, with
// Kafka's default of 1 MiB) may accept less than Sluice would give it.
// The error is creation's: Kafka did not answer or refused; the caller
// retries. readLimit is MaxMessageBytes, or a test's stand-in.
func EnsureTopic(ctx context.Context, adm *kadm.Client, t Topic,
	readLimit func(context.Context, *kadm.Client, string) (int32, error)) (PreparedTopic, error) {
	created, err := createTopic(ctx, adm, t)
	if err != nil {
		return PreparedTopic{}, err
	}
	if created {
		return PreparedTopic{Created: true, MaxMessageBytes: t.MaxMessageBytes}, nil
	}
	if readLimit == nil {
		readLimit = MaxMessageBytes
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	v, err := readLimit(ctx, adm, t.Name)
	return PreparedTopic{Created: created, MaxMessageBytes: v, LimitErr: err}, nil
}

func createTopic(ctx context.Context, adm *kadm.Client, t Topic) (created bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	maxMessage := strconv.Itoa(int(t.MaxMessageBytes))
	resp, err := adm.CreateTopic(ctx, t.Partitions, t.ReplicationFactor,
		map[string]*string{"max.message.bytes": &maxMessage}, t.Name)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("creating topic %s: %w", t.Name, err)
	}
	return true, nil
}

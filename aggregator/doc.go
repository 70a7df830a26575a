// Package aggregator is `sluice aggregate`: a Kafka consumer group member
// that parses each line by its document type and bulk-indexes it into
// Elasticsearch. It wires three stages, one package each, in the order
// the data flows:
//
//   - consume: the poll loop (consume.Loop) polls a batch of records and
//     carries it, in a flow that keeps several bulk requests in flight
//     across polls, to its commit;
//   - process: each record becomes a document (process.Documents): decoded
//     into an event, parsed by its document type, enriched (GeoIP), run
//     through its type's pipeline, mapped to ECS, routed to its index and
//     encoded;
//   - deliver: documents go to a deliver.Sink, in requests of up to
//     bulk_bytes or flush_interval old: the Elasticsearch bulk indexer
//     behind the duplicate check; what is rejected for good goes to the
//     dead letters (deliver.DeadLetters: the dead-letter topic).
//
// Acknowledgements flow back the same way: every document gets its
// outcome from the sink; a partition's offset is committed only once
// every one of its records up to it is acknowledged by Elasticsearch or
// written to the dead-letter topic; documents of an index that keeps
// failing wait apart, holding back only their own partitions. A rebalance
// first waits, up to a bound, for everything in flight to be committed;
// what is not by then is abandoned with the partitions that are revoked,
// for their next owner.
//
// This package keeps the wiring: Config, New and Run; Replay (`sluice
// replay`), the look-ups of `sluice reconcile` and the Tester of `sluice
// test`. `sluice run` wires the same stages in package runner, with its
// own outputs; the stages do not know it exists.
//
// Vocabulary, one meaning each:
//
//   - stage: one of consume, process, deliver;
//   - sink: where documents go, the deliver.Sink interface: Elasticsearch
//     (deliver.Lookup in front of deliver.Bulk) or sluice run's NDJSON
//     output (runner.NDJSON);
//   - pipeline: only the configured steps of a document type (the
//     pipelines key, package aggregator/pipeline); the whole path is the
//     stages;
//   - flow: the records between their poll and their commit (consume);
//   - item: a document on its way to the sink, with its outcome
//     (deliver.Item, deliver.Outcome);
//   - dead letter: a record that cannot be delivered (deliver.DeadLetter);
//   - budget: the bytes of records in flight above which the poll loop
//     waits (consume).
package aggregator

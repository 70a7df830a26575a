// Package chaos is Sluice's fault campaign (make chaos): the real
// `sluice ship` and `sluice aggregate` against the three-broker Kafka and
// two-node Elasticsearch of deploy/local/cluster.sh, with a fault injected
// while uniquely numbered lines are written; then every number written is
// looked for in Elasticsearch and in the dead-letter topic.
//
// The campaign is TestChaos, which skips unless SLUICE_CHAOS=1: it takes
// minutes and kills servers, so it is never part of `make test`. See
// docs/testing.md, "Fault campaign", for the scenarios and the environment.
package chaos

# Sluice: make demo (try it), make test (prove it).
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
STACK := deploy/local/stack.sh
# Integration tests share one Kafka and one Elasticsearch; two packages at a
# time keeps a 2-core machine responsive. -count=1: results of tests against
# the servers are never taken from Go's test cache.
TEST_FLAGS ?= -p 2 -count=1 -timeout 20m

.PHONY: build test test-short tools rules unit integration demo up down bench manyfiles soak chaos lint fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sluice ./cmd/sluice

## test: unit tests, then integration tests against the real Kafka and
## Elasticsearch (started if not running).
test: build tools up
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...

## tools: Debian packages the tests run besides Go, Java and Maven: nginx
## (the TLS proxy in front of Elasticsearch), openssl (stack.sh's test CA),
## podman and runc (the container image test). Installed with apt-get when
## missing and running as root.
tools:
	@missing=""; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v podman >/dev/null 2>&1 || missing="$$missing podman"; \
	command -v runc >/dev/null 2>&1 || missing="$$missing runc"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "tools: installing$$missing"; apt-get update -qq && apt-get install -y -qq $$missing; \
	  else echo "tools: install$$missing (e.g. sudo apt-get install -y$$missing)"; exit 1; fi; \
	fi

## rules: Prometheus' promtool over the alerting rules (check and their
## tests), as `go test ./deploy/` does in `make test`. promtool comes from
## the tools module deploy/prometheus/go.mod (its dependencies stay out of
## Sluice's go.mod); the first run builds it (minutes), later runs take it
## from Go's build cache.
rules:
	cd deploy/prometheus && $(GO) tool promtool check rules sluice-rules.yaml && $(GO) tool promtool test rules sluice-rules_test.yaml

## test-short: the unit tests only, with no JVM: the tests that need the
## real Kafka and Elasticsearch skip themselves under -short
## (testenv.Start), and kfake, franz-go's in-process Kafka, serves the
## produce, commit, rebalance and oversize paths instead. goleak checks
## the packages that start goroutines (TestMain).
test-short:
	$(GO) vet ./...
	$(GO) test -short -count=1 ./...

unit: test-short

up:
	$(STACK) up

down:
	$(STACK) down

demo: build up
	deploy/local/demo.sh

bench: build up
	$(GO) test -run '^$$' -bench . -benchmem ./...
	benchmarks/ship.sh
	benchmarks/aggregate.sh

## manyfiles: the shipper with 1,000 busy files (100 lines/s each), then
## 1,000 quiet ones (a line a minute); MANYFILES_SECONDS (120) each.
manyfiles: build up
	benchmarks/manyfiles.sh busy $${MANYFILES_SECONDS:-120}
	benchmarks/manyfiles.sh quiet $${MANYFILES_SECONDS:-120}

soak: build up
	SLUICE_SOAK=1 $(GO) test -run Soak -timeout 60m -v ./...

## chaos: the fault campaign (package chaos; not part of `make test`). Starts
## its own cluster with deploy/local/cluster.sh (3 Kafka brokers in KRaft,
## replication 3 and min.insync.replicas 2, on 19092-19094; 2 Elasticsearch
## nodes on 19200-19201; data in .chaos/), runs every scenario one after the
## other with the real binaries, prints the table (also written to
## benchmarks/out/chaos.md) and stops the cluster, even when a scenario
## fails. About 25 minutes at CHAOS_SCALE=1 on 2 cores (a scenario that
## never recovers adds CHAOS_SETTLE). CHAOS_RUN=leader-kill (or a
## comma-separated list, or a regular expression) runs some scenarios only;
## CHAOS_SCALE=0.5 halves every fault's duration; CHAOS_RATE lines/s (400);
## CHAOS_SETTLE (3m) is how long lines may take to arrive after a fault;
## CHAOS_KEEP=1 leaves the cluster running; CHAOS_KEEP_DIR=1 keeps each
## scenario's files and process logs (path in the test log).
chaos: build
	deploy/local/cluster.sh up
	SLUICE_CHAOS=1 CHAOS_RUN='$(CHAOS_RUN)' $(GO) test -count=1 -v -timeout 90m -run '^TestChaos$$' ./chaos/; \
	  rc=$$?; [ -n "$$CHAOS_KEEP" ] || deploy/local/cluster.sh down; exit $$rc

fuzz:
	@for p in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$p/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9]*\).*/\1/'); do \
	    echo "== $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} $$p || exit 1; \
	  done; done

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...

clean:
	rm -rf bin

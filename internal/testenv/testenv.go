// Package testenv gives tests the real local Kafka and Elasticsearch. The
// first test that asks starts them with deploy/local/stack.sh if they are
// not running; every test gets its own topic and index names, so tests do
// not see each other's data.
//
// SLUICE_KAFKA (host:port) and SLUICE_ELASTICSEARCH (URL) point the tests at
// servers elsewhere; the stack script is not used then.
//
// Under `go test -short` (make test-short) every test that asks for the
// stack is skipped: the unit tests, with fakes and kfake (an in-process
// Kafka), cover the same paths without a JVM.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Stack is a running Kafka and Elasticsearch.
type Stack struct {
	Broker        string
	Elasticsearch string
}

var (
	once     sync.Once
	stack    *Stack
	startErr error
)

// Start returns the stack, starting it if needed. It fails the test if the
// stack cannot be started: the integration tests are never skipped, except
// under -short, which skips the test (SkipShort).
func Start(t testing.TB) *Stack {
	t.Helper()
	SkipShort(t)
	once.Do(func() { stack, startErr = start() })
	if startErr != nil {
		t.Fatalf("local Kafka and Elasticsearch: %v", startErr)
	}
	return stack
}

// SkipShort skips the test under -short: it needs the real Kafka and
// Elasticsearch (or what else only `make test` brings: the built binary's
// servers, podman).
func SkipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the real Kafka and Elasticsearch: runs in make test, not under -short")
	}
}

func start() (*Stack, error) {
	s := &Stack{Broker: os.Getenv("SLUICE_KAFKA"), Elasticsearch: os.Getenv("SLUICE_ELASTICSEARCH")}
	external := s.Broker != "" || s.Elasticsearch != ""
	if s.Broker == "" {
		s.Broker = "127.0.0.1:9092"
	}
	if s.Elasticsearch == "" {
		s.Elasticsearch = "http://127.0.0.1:9200"
	}
	if s.healthy() {
		return s, nil
	}
	if external {
		return nil, fmt.Errorf("SLUICE_KAFKA=%s / SLUICE_ELASTICSEARCH=%s do not answer", s.Broker, s.Elasticsearch)
	}
	if err := Script("up"); err != nil {
		return nil, err
	}
	if !s.healthy() {
		return nil, fmt.Errorf("stack.sh up returned but the servers do not answer")
	}
	return s, nil
}

// Script runs deploy/local/stack.sh with args, for tests that stop and
// start a server.
func Script(args ...string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(root, "deploy", "local", "stack.sh"), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("stack.sh %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (s *Stack) healthy() bool {
	conn, err := net.DialTimeout("tcp", s.Broker, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	res, err := http.Get(s.Elasticsearch + "/_cluster/health")
	if err != nil {
		return false
	}
	defer res.Body.Close()
	var h struct{ Status string }
	if json.NewDecoder(res.Body).Decode(&h) != nil {
		return false
	}
	return h.Status == "green" || h.Status == "yellow"
}

// LocalDir is the local stack's directory ($SLUICE_LOCAL, else .local in
// the repository), as deploy/local/stack.sh sees it.
func LocalDir() (string, error) {
	if dir := os.Getenv("SLUICE_LOCAL"); dir != "" {
		return dir, os.MkdirAll(dir, 0o755)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".local")
	return dir, os.MkdirAll(dir, 0o755)
}

// RepoRoot finds the directory holding go.mod above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Name returns a name unique to this test run, for topics, indices and
// consumer groups: prefix, the test's name, and random hex, lower case.
func Name(t testing.TB, prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := strings.ToLower(t.Name())
	n = strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			return r
		}
		return '-'
	}, n)
	if len(n) > 40 {
		n = n[:40]
	}
	return prefix + "-" + strings.Trim(n, "-") + "-" + hex.EncodeToString(b[:])
}

// Client returns a Kafka client for the stack, closed when the test ends.
func (s *Stack) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Broker)}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates a topic with partitions.
func (s *Stack) CreateTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(s.Client(t)).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
}

// ReadTopic reads records from the start of topic until want records
// arrived or timeout passed, and returns what it read.
func (s *Stack) ReadTopic(t testing.TB, topic string, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl := s.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		out = append(out, fetches.Records()...)
	}
	return out
}

// ES sends a request to Elasticsearch and decodes the JSON answer into out
// (if not nil). It fails the test on transport errors and returns the
// status code.
func (s *Stack) ES(t testing.TB, method, path string, body io.Reader, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, s.Elasticsearch+path, body)
	if err != nil {
		t.Fatalf("elasticsearch request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("elasticsearch %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("elasticsearch %s %s: decoding %q: %v", method, path, data, err)
		}
	}
	return res.StatusCode
}

// Search runs query (a JSON search body) over the indices matching pattern
// and returns the _source of the hits.
func (s *Stack) Search(t testing.TB, pattern, query string) []map[string]any {
	t.Helper()
	var res struct {
		Hits struct {
			Hits []struct {
				Source map[string]any `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if code := s.ES(t, http.MethodPost, "/"+pattern+"/_search", strings.NewReader(query), &res); code != http.StatusOK {
		t.Fatalf("search %s: status %d", pattern, code)
	}
	out := make([]map[string]any, len(res.Hits.Hits))
	for i, h := range res.Hits.Hits {
		out[i] = h.Source
	}
	return out
}

// Count refreshes the indices matching pattern and returns how many
// documents they hold (0 if none exist).
func (s *Stack) Count(t testing.TB, pattern string) int {
	t.Helper()
	s.ES(t, http.MethodPost, "/"+pattern+"/_refresh?ignore_unavailable=true&allow_no_indices=true", nil, nil)
	var c struct {
		Count int `json:"count"`
	}
	if code := s.ES(t, http.MethodGet, "/"+pattern+"/_count?ignore_unavailable=true&allow_no_indices=true", nil, &c); code != http.StatusOK {
		return 0
	}
	return c.Count
}

// WaitCount polls Count until it reaches want or timeout passes, and
// returns the last count.
func (s *Stack) WaitCount(t testing.TB, pattern string, want int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := s.Count(t, pattern)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// DeleteIndices removes indices matching pattern when the test ends.
func (s *Stack) DeleteIndices(t testing.TB, pattern string) {
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, s.Elasticsearch+"/"+pattern+"?ignore_unavailable=true&allow_no_indices=true", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	})
}

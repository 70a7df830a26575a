package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/internal/event"
)

// `sluice test` runs sample lines through the aggregator's parsers, GeoIP
// and pipelines, with no Kafka or Elasticsearch, and compares the documents
// with the expected ones.
//
// A case is DIR/<name>.<type>.log, input lines of document type <type>, one
// per line (empty lines are skipped), with DIR/<name>.<type>.expected.ndjson
// holding one JSON object per non-empty input line: the document with its
// index in "_index", or {"_dropped": "<step name>"}. An optional
// DIR/<name>.<type>.fields.json holds the shipper's static and path fields
// (a JSON object of strings, e.g. {"service": "edge", "environment": "prod"}).
//
// Metadata that the shipper would provide is fixed, so documents do not vary
// between runs: see the test* constants.
const (
	testNode   = "sluice-test"
	testFileID = "sluice-test"
	// testReadTime is the read time (event.created, and @timestamp of lines
	// without a time of their own).
	testReadTimeRFC3339 = "2026-01-01T00:00:00Z"
	// DefaultTestDir is the test directory, next to the configuration file,
	// when neither -dir nor the tests key is given.
	defaultTestDir = "pipeline-tests"
)

// Keys in expected documents that are not document fields.
const (
	keyIndex   = "_index"
	keyDropped = "_dropped"
)

var errTestsFailed = errors.New("documents differ from the expected ones")

type testFlags struct {
	dir    string
	update bool
}

// testCase is one <name>.<type>.log file.
type testCase struct {
	name, typ          string
	input, expected    string
	fields             map[string]string
	lines              [][]byte
	offsets            []int64
	lineNumbers        []int
	expectedDocuments  []map[string]any
	expectedLineNumber []int
}

// run runs every case of the test directory and reports to out. It returns
// errTestsFailed when a document differs.
func (f testFlags) run(path string, out io.Writer) error {
	cfg, err := loadAggregator(path)
	if err != nil {
		return err
	}
	dir := f.dir
	if dir == "" {
		dir = cfg.Tests
		if dir == "" {
			dir = defaultTestDir
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(filepath.Dir(path), dir)
		}
	}
	cases, err := loadCases(dir, f.update)
	if err != nil {
		return err
	}
	tester, err := aggregator.NewTester(cfg)
	if err != nil {
		return err
	}
	defer tester.Close()
	readTime, _ := time.Parse(time.RFC3339, testReadTimeRFC3339)
	failed, lines, failedLines := 0, 0, 0
	for _, c := range cases {
		got := make([]map[string]any, len(c.lines))
		for i, line := range c.lines {
			res := tester.Document(event.Event{
				Type: c.typ, Node: testNode, Path: filepath.Base(c.input), FileID: testFileID,
				Offset: c.offsets[i], ReadTime: readTime, Fields: c.fields, Line: line,
			})
			if got[i], err = resultJSON(res); err != nil {
				return fmt.Errorf("%s line %d: %w", filepath.Base(c.input), c.lineNumbers[i], err)
			}
		}
		lines += len(got)
		if f.update {
			if err := writeExpected(c.expected, got); err != nil {
				return err
			}
			fmt.Fprintf(out, "updated %s (%d documents)\n", filepath.Base(c.expected), len(got))
			continue
		}
		report, differ := c.compare(got)
		if differ == 0 {
			fmt.Fprintf(out, "ok    %s.%s (%d lines)\n", c.name, c.typ, len(got))
			continue
		}
		failed++
		failedLines += differ
		fmt.Fprintf(out, "FAIL  %s.%s (- expected, + got)\n%s", c.name, c.typ, report)
	}
	if f.update {
		return nil
	}
	if failed > 0 {
		fmt.Fprintf(out, "FAIL: %d of %d cases, %d of %d lines differ\n", failed, len(cases), failedLines, lines)
		return errTestsFailed
	}
	fmt.Fprintf(out, "PASS: %d cases, %d lines\n", len(cases), lines)
	return nil
}

// loadCases reads every case in dir. With update, expected files may be
// missing.
func loadCases(dir string, update bool) ([]*testCase, error) {
	inputs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("no test cases in %s: add <name>.<type>.log files of input lines, e.g. health.nginx.log", dir)
	}
	sort.Strings(inputs)
	var cases []*testCase
	for _, in := range inputs {
		base := strings.TrimSuffix(filepath.Base(in), ".log")
		dot := strings.LastIndexByte(base, '.')
		if dot <= 0 || dot == len(base)-1 {
			return nil, fmt.Errorf("%s: name test inputs <name>.<type>.log, e.g. health.nginx.log", in)
		}
		stem := strings.TrimSuffix(in, ".log")
		c := &testCase{name: base[:dot], typ: base[dot+1:], input: in, expected: stem + ".expected.ndjson"}
		if err := c.readInput(); err != nil {
			return nil, err
		}
		if err := c.readFields(stem + ".fields.json"); err != nil {
			return nil, err
		}
		if err := c.readExpected(); err != nil && !(update && errors.Is(err, os.ErrNotExist)) {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%s: no expected documents; run sluice test with -update to write them, then review them", c.expected)
			}
			return nil, err
		}
		cases = append(cases, c)
	}
	return cases, nil
}

func (c *testCase) readInput() error {
	data, err := os.ReadFile(c.input)
	if err != nil {
		return err
	}
	var offset int64
	for n, line := range bytes.SplitAfter(data, []byte("\n")) {
		start := offset
		offset += int64(len(line))
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) == 0 {
			continue
		}
		c.lines = append(c.lines, line)
		c.offsets = append(c.offsets, start)
		c.lineNumbers = append(c.lineNumbers, n+1)
	}
	return nil
}

func (c *testCase) readFields(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &c.fields); err != nil {
		return fmt.Errorf("%s: must be a JSON object of strings, e.g. {\"service\": \"edge\"}: %w", path, err)
	}
	return nil
}

func (c *testCase) readExpected() error {
	data, err := os.ReadFile(c.expected)
	if err != nil {
		return err
	}
	for n, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		v, err := decodeJSON(line)
		if err != nil {
			return fmt.Errorf("%s line %d: %w", c.expected, n+1, err)
		}
		doc, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s line %d: must be a JSON object", c.expected, n+1)
		}
		c.expectedDocuments = append(c.expectedDocuments, doc)
		c.expectedLineNumber = append(c.expectedLineNumber, n+1)
	}
	return nil
}

// resultJSON is a result as its expected line reads: the document and its
// "_index", or {"_dropped": step}. It goes through JSON, as the document
// does on its way to Elasticsearch.
func resultJSON(r aggregator.Result) (map[string]any, error) {
	if r.Doc == nil {
		return map[string]any{keyDropped: r.DroppedBy}, nil
	}
	data, err := marshal(r.Doc)
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	doc := v.(map[string]any)
	doc[keyIndex] = r.Index
	return doc, nil
}

// decodeJSON decodes one JSON value, with whole numbers as int64 and other
// numbers as float64, so that 200 and 200.0 are equal.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		if f == float64(int64(f)) && f > -1<<53 && f < 1<<53 {
			return int64(f)
		}
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func writeExpected(path string, docs []map[string]any) error {
	var b bytes.Buffer
	for _, d := range docs {
		line, err := marshal(d)
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// compare returns a readable report of the differences between got and the
// expected documents, and how many lines differ.
func (c *testCase) compare(got []map[string]any) (string, int) {
	var b strings.Builder
	differ := 0
	for i := range max(len(got), len(c.expectedDocuments)) {
		switch {
		case i >= len(c.expectedDocuments):
			fmt.Fprintf(&b, "--- line %d: no expected document (%s has %d); run with -update to add it\n    %s\n",
				c.lineNumbers[i], filepath.Base(c.expected), len(c.expectedDocuments), c.lines[i])
		case i >= len(got):
			fmt.Fprintf(&b, "--- %s line %d: expected document has no input line (%s has %d)\n",
				filepath.Base(c.expected), c.expectedLineNumber[i], filepath.Base(c.input), len(got))
		default:
			diff := diffDocuments(c.expectedDocuments[i], got[i])
			if diff == "" {
				continue
			}
			fmt.Fprintf(&b, "--- line %d: %s\n%s", c.lineNumbers[i], c.lines[i], diff)
		}
		differ++
	}
	return b.String(), differ
}

// diffDocuments lists, by field, what is expected (-) and what was built
// (+).
func diffDocuments(want, got map[string]any) string {
	keys := make([]string, 0, len(want)+len(got))
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		w, inWant := want[k]
		g, inGot := got[k]
		if inWant && inGot && reflect.DeepEqual(w, g) {
			continue
		}
		if inWant {
			fmt.Fprintf(&b, "    - %s: %s\n", k, jsonText(w))
		}
		if inGot {
			fmt.Fprintf(&b, "    + %s: %s\n", k, jsonText(g))
		}
	}
	return b.String()
}

func jsonText(v any) string {
	b, err := marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

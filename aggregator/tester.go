package aggregator

import "github.com/sluicelog/sluice/aggregator/process"

// Tester builds documents exactly as the aggregator does, without Kafka or
// Elasticsearch: it backs `sluice test`.
type Tester = process.Tester

// Result is what the aggregator would do with one event.
type Result = process.Result

// NewTester validates cfg and prepares its parsers, GeoIP databases and
// pipelines. Close it when done.
func NewTester(cfg Config) (*Tester, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return process.NewTester(cfg.ProcessConfig())
}

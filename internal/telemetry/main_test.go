package telemetry

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine they started is
// still running at the end: a harvester, retry or client not stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

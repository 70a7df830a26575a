package testenv

import (
	"testing"

	"go.uber.org/goleak"
)

// VerifyNoLeaks runs a package's tests (from its TestMain) and fails them
// if any goroutine they started is still running at the end: a harvester,
// worker, retry or client not stopped. Idle keep-alive connections of
// HTTP clients (Elasticsearch's, the stack's health check) are not
// goroutines of ours: the transport keeps them until they time out.
func VerifyNoLeaks(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"))
}

package main

import (
	"runtime/debug"
	"testing"

	"go.uber.org/zap"
)

// The Go runtime's soft limit comes from memory_limit, unless GOMEMLIMIT
// is set, which the runtime has read already.
func TestSetMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	t.Setenv("GOMEMLIMIT", "")
	setMemoryLimit(3<<30, zap.NewNop())
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Errorf("limit %d, want 3 GiB", got)
	}
	debug.SetMemoryLimit(prev)
	t.Setenv("GOMEMLIMIT", "4GiB")
	setMemoryLimit(3<<30, zap.NewNop())
	if got := debug.SetMemoryLimit(-1); got != prev {
		t.Errorf("with GOMEMLIMIT set, the limit became %d", got)
	}
}

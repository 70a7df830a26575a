package main

import (
	"os"
	"runtime/debug"

	"go.uber.org/zap"
)

// setMemoryLimit gives the Go runtime its soft memory limit, derived from
// memory_limit, unless GOMEMLIMIT says otherwise: the collector then
// works harder near the limit instead of letting the heap double.
func setMemoryLimit(limit int64, log *zap.Logger) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		log.Info("GOMEMLIMIT is set: memory_limit does not set the Go runtime's soft limit", zap.String("GOMEMLIMIT", v))
		return
	}
	debug.SetMemoryLimit(limit)
	log.Info("Go runtime soft memory limit set from memory_limit", zap.Int64("bytes", limit))
}

//go:build linux || darwin

package geoip

import (
	"fmt"
	"syscall"
)

// offHeap returns n bytes of anonymous memory outside the Go heap, and the
// function that gives them back. A database is tens of MiB read once: in
// the heap it would also count towards the collector's goal (GOGC=100
// lets the heap grow to twice what is live), costing its size again in
// RSS. Anonymous memory, unlike a mapping of the file, does not change when
// the file is rewritten in place.
func offHeap(n int) ([]byte, func(), error) {
	if n == 0 {
		return nil, func() {}, nil
	}
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, nil, fmt.Errorf("allocating %d bytes: %w", n, err)
	}
	return b, func() { _ = syscall.Munmap(b) }, nil
}

//go:build !linux

package shipper

import "golang.org/x/sys/unix"

// statFlags opens a file to fstat it; non-blocking, so that a FIFO does
// not hang the open. (Linux has O_PATH, without side effects.)
const statFlags = unix.O_RDONLY | unix.O_NONBLOCK

// openat2Beneath is Linux's: elsewhere components are opened one at a time.
func openat2Beneath(int, string, int) (int, error) { return -1, unix.ENOSYS }

// pseudoFS: the kernel interfaces refused are Linux's.
func pseudoFS(int) (string, error) { return "", nil }

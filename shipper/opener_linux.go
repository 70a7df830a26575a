package shipper

import "golang.org/x/sys/unix"

// statFlags opens a file only to fstat it: O_PATH has no side effect even
// on a device or a FIFO.
const statFlags = unix.O_PATH

// openat2Beneath opens rest under dfd with the kernel refusing any
// symbolic link (ELOOP) and any way out of dfd.
func openat2Beneath(dfd int, rest string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	return unix.Openat2(dfd, rest, &how)
}

// pseudoFSNames are file systems whose files are kernel interfaces, never
// logs: their sizes say nothing of what a read returns (a procfs file is
// size 0 and never reads the same way twice), and they hold the node's
// secrets.
var pseudoFSNames = map[int64]string{
	unix.PROC_SUPER_MAGIC: "proc", unix.SYSFS_MAGIC: "sysfs", unix.CGROUP_SUPER_MAGIC: "cgroup",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2", unix.DEBUGFS_MAGIC: "debugfs", unix.TRACEFS_MAGIC: "tracefs",
	unix.SECURITYFS_MAGIC: "securityfs", unix.BPF_FS_MAGIC: "bpf", unix.EFIVARFS_MAGIC: "efivarfs",
	unix.DEVPTS_SUPER_MAGIC: "devpts",
}

// pseudoFS returns the name of the kernel file system fd is on, or "".
func pseudoFS(fd int) (string, error) {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return "", err
	}
	return pseudoFSNames[int64(fs.Type)], nil
}

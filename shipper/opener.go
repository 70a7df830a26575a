package shipper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// opener opens the files of one input without following what the node's
// other users may have put in its directories. The shipper reads as root
// (with DAC_READ_SEARCH) in folders its tenants write to: a symbolic link
// there would otherwise have it read a root-only file, a token, or another
// tenant's log and ship it under this input's fields.
//
// The directories of the globs up to their first glob character
// (/var/log/services for /var/log/services/*/*/*/*.log) are the operator's
// and are resolved as usual; below them, no symbolic link is followed
// unless the input's symlinks.follow is on, and then only one whose target
// is under symlinks.roots, resolved from that root the same way (a further
// link only into the roots too). Each step is resolved by the kernel from a
// directory handle with openat2's RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or,
// on kernels without openat2, one component at a time with O_NOFOLLOW: no
// name is looked up twice, so a link swapped in meanwhile is never
// followed. The file opened must then be a regular file with one link, on a
// file system that is not a kernel interface (procfs, sysfs, ...).
type opener struct {
	// bases are the literal directories of the input's globs.
	bases          []string
	follow         bool
	roots          []string
	allowHardLinks bool
	// noOpenat2 is set once the kernel (or a seccomp filter) refused
	// openat2: components are then opened one at a time.
	noOpenat2 atomic.Bool
}

// maxLinkHops bounds the links followed for one file (the kubelet's
// /var/log/containers link and Docker's /var/log/pods link make two).
const maxLinkHops = 8

// Reasons a file is refused, the label of sluice_shipper_files_refused_total.
const (
	refusedSymlink      = "symlink"
	refusedOutsideRoots = "symlink_outside_roots"
	refusedLinkLoop     = "too_many_links"
	refusedHardLink     = "hard_link"
	refusedNotRegular   = "not_regular"
	refusedPseudoFS     = "pseudo_fs"
	refusedOutsideDirs  = "outside_input_dirs"
)

// refusal is a file the input's policy does not let it read.
type refusal struct {
	reason string
	detail string
}

func (r *refusal) Error() string { return r.detail }

func newOpener(in InputConfig) *opener {
	o := &opener{follow: in.Symlinks.Follow, allowHardLinks: in.AllowHardLinks}
	for _, g := range in.Paths {
		o.bases = append(o.bases, literalDir(g))
	}
	for _, r := range in.Symlinks.Roots {
		o.roots = append(o.roots, filepath.Clean(r))
	}
	return o
}

// literalDir returns the directory of glob above its first component with a
// glob character: the part of the path the operator wrote out.
func literalDir(glob string) string {
	parts := strings.Split(filepath.Clean(glob), "/")
	dir := "/"
	for _, p := range parts[1 : len(parts)-1] {
		if strings.ContainsAny(p, `*?[\`) {
			break
		}
		dir = filepath.Join(dir, p)
	}
	return dir
}

// beneath returns the directory of dirs that path is under (the deepest),
// and path relative to it.
func beneath(dirs []string, path string) (dir, rel string, ok bool) {
	for _, d := range dirs {
		r, err := filepath.Rel(d, path)
		if err != nil || r == ".." || strings.HasPrefix(r, "../") {
			continue
		}
		if !ok || len(d) > len(dir) {
			dir, rel, ok = d, r, true
		}
	}
	return dir, rel, ok
}

// stat returns the file at path as the input may read it, or why not.
func (o *opener) stat(path string) (os.FileInfo, error) {
	f, err := o.open(path, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// openRead opens the file at path for reading, or says why it may not be.
func (o *opener) openRead(path string) (*os.File, error) { return o.open(path, true) }

// open opens path for reading (read) or as a handle only good for fstat
// (O_PATH: no side effect even on a device or a FIFO).
func (o *opener) open(path string, read bool) (*os.File, error) {
	path = filepath.Clean(path)
	dir, rest, ok := beneath(o.bases, path)
	if !ok {
		return nil, &refusal{refusedOutsideDirs, fmt.Sprintf("%s is not under the directories of the input's globs", path)}
	}
	flags := statFlags
	if read {
		// O_NONBLOCK: a FIFO swapped in does not hang the open; the
		// file is checked to be regular before anything reads it.
		flags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_NOFOLLOW
	}
	for hops := 0; ; hops++ {
		fd, err := o.openBeneath(dir, rest, flags)
		if err == nil {
			return o.check(fd, path, read)
		}
		if !errors.Is(err, unix.ELOOP) {
			return nil, err
		}
		if !o.follow {
			return nil, &refusal{refusedSymlink, fmt.Sprintf("%s is or passes through a symbolic link, and the input's symlinks.follow is off", path)}
		}
		if hops == maxLinkHops {
			return nil, &refusal{refusedLinkLoop, fmt.Sprintf("%s passes through more than %d symbolic links", path, maxLinkHops)}
		}
		target, err := firstLink(dir, rest)
		if err != nil {
			return nil, err
		}
		if dir, rest, ok = beneath(o.roots, target); !ok {
			return nil, &refusal{refusedOutsideRoots, fmt.Sprintf("%s links to %s, which is not under the input's symlinks.roots", path, target)}
		}
	}
}

// check returns fd as a file if it is one the input may read, else closes it.
func (o *opener) check(fd int, path string, read bool) (*os.File, error) {
	r := o.refuse(fd, path)
	if r == nil && read {
		if err := unix.SetNonblock(fd, false); err != nil {
			r = fmt.Errorf("%s: %w", path, err)
		}
	}
	if r != nil {
		unix.Close(fd)
		return nil, r
	}
	return os.NewFile(uintptr(fd), path), nil
}

// refuse says why the file open at fd may not be read, or nil.
func (o *opener) refuse(fd int, path string) error {
	if name, err := pseudoFS(fd); err != nil {
		return fmt.Errorf("statfs %s: %w", path, err)
	} else if name != "" {
		return &refusal{refusedPseudoFS, fmt.Sprintf("%s is on %s, a kernel interface and not a log", path, name)}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return &refusal{refusedNotRegular, fmt.Sprintf("%s is not a regular file", path)}
	}
	if st.Nlink > 1 && !o.allowHardLinks {
		return &refusal{refusedHardLink, fmt.Sprintf("%s has %d hard links: it may be another's file linked here; set the input's allow_hard_links to read it", path, st.Nlink)}
	}
	return nil
}

// openBeneath opens rest under the directory dir without following any
// symbolic link in rest (ELOOP if there is one) or leaving dir. The
// directory is opened as usual: it is the operator's.
func (o *opener) openBeneath(dir, rest string, flags int) (int, error) {
	dfd, err := unix.Open(dir, statFlags|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	if !o.noOpenat2.Load() {
		fd, err := openat2Beneath(dfd, rest, flags)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
			o.noOpenat2.Store(true) // older kernel, or a seccomp filter
		default:
			return -1, &os.PathError{Op: "open", Path: filepath.Join(dir, rest), Err: err}
		}
	}
	fd, err := walkNoFollow(dfd, rest, flags)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: filepath.Join(dir, rest), Err: err}
	}
	return fd, nil
}

// walkNoFollow opens rest under dfd one component at a time, each with
// O_NOFOLLOW: ELOOP at the first symbolic link.
func walkNoFollow(dfd int, rest string, flags int) (int, error) {
	comps := strings.Split(rest, "/")
	cur := dfd
	defer func() {
		if cur != dfd {
			unix.Close(cur)
		}
	}()
	for i, c := range comps {
		if c == ".." {
			return -1, unix.EXDEV
		}
		last := i == len(comps)-1
		open := statFlags
		if last {
			open = flags
		}
		fd, err := unix.Openat(cur, c, open|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, err // ELOOP at a link opened without O_PATH
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, err
		}
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFLNK: // O_PATH opens the link itself
			unix.Close(fd)
			return -1, unix.ELOOP
		case last:
			return fd, nil
		case st.Mode&unix.S_IFMT != unix.S_IFDIR:
			unix.Close(fd)
			return -1, unix.ENOTDIR
		}
		if cur != dfd {
			unix.Close(cur)
		}
		cur = fd
	}
	return -1, unix.ENOENT // rest was empty
}

// firstLink returns where rest, under dir, leads through its first
// symbolic link: the link's target joined with what follows it in rest.
func firstLink(dir, rest string) (string, error) {
	comps := strings.Split(rest, "/")
	cur, err := unix.Open(dir, statFlags|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer func() { unix.Close(cur) }()
	for i, c := range comps {
		fd, err := unix.Openat(cur, c, statFlags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		link := errors.Is(err, unix.ELOOP) // without O_PATH
		if err != nil && !link {
			return "", &os.PathError{Op: "open", Path: filepath.Join(dir, filepath.Join(comps[:i+1]...)), Err: err}
		}
		if !link {
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				unix.Close(fd)
				return "", err
			}
			if link = st.Mode&unix.S_IFMT == unix.S_IFLNK; link {
				unix.Close(fd)
			}
		}
		if link {
			buf := make([]byte, 4096)
			n, err := unix.Readlinkat(cur, c, buf)
			if err != nil {
				return "", fmt.Errorf("readlink %s: %w", filepath.Join(dir, filepath.Join(comps[:i+1]...)), err)
			}
			target := string(buf[:n])
			if !filepath.IsAbs(target) {
				target = filepath.Join(dir, filepath.Join(comps[:i]...), target)
			}
			return filepath.Clean(filepath.Join(append([]string{target}, comps[i+1:]...)...)), nil
		}
		unix.Close(cur)
		cur = fd
	}
	// The link was replaced meanwhile: the next scan looks again.
	return "", &os.PathError{Op: "open", Path: filepath.Join(dir, rest), Err: errors.New("changed while its links were resolved")}
}

// refusals are the paths refused by their input's policy and warned about,
// so that each is warned about (and counted) once while it stays refused.
// Safe for concurrent use.
type refusals struct {
	log     *zap.Logger
	counter func(reason string)
	mu      sync.Mutex
	scan    uint64
	warned  map[string]refusedPath
}

type refusedPath struct {
	reason string
	scan   uint64 // the last scan it was refused in
}

func newRefusals(log *zap.Logger, counter func(reason string)) *refusals {
	return &refusals{log: log, counter: counter, warned: map[string]refusedPath{}}
}

// report warns about path if err is a refusal not yet warned about.
func (r *refusals) report(path string, err error) {
	var ref *refusal
	if !errors.As(err, &ref) {
		return
	}
	r.mu.Lock()
	old, seen := r.warned[path]
	r.warned[path] = refusedPath{reason: ref.reason, scan: r.scan}
	r.mu.Unlock()
	if seen && old.reason == ref.reason {
		return
	}
	r.counter(ref.reason)
	r.log.Warn("not reading a file the input's policy refuses", zap.String("path", path),
		zap.String("reason", ref.reason), zap.String("detail", ref.detail))
}

// sweep ends a scan: paths not refused in it are warned about again should
// they be refused later.
func (r *refusals) sweep() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, w := range r.warned {
		if w.scan < r.scan {
			delete(r.warned, p)
		}
	}
	r.scan++
}

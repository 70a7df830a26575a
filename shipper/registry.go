package shipper

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// registryEntry is what the shipper remembers about one file generation.
type registryEntry struct {
	ID          string      `json:"id"`
	Path        string      `json:"path"`
	Type        string      `json:"type"`
	DevIno      devIno      `json:"dev_ino"`
	Fingerprint fingerprint `json:"fingerprint"`
	// Offset is the end of the last line Kafka acknowledged, in order.
	Offset  int64     `json:"offset"`
	Updated time.Time `json:"updated"`
	// Sent is the sent horizon (horizon.go): no line starting at or past
	// it was produced. Written before such a line is.
	Sent int64 `json:"sent,omitempty"`
	// ReleasedModTime is the file's modification time when it was
	// released at its end (close_inactive): the scan leaves it closed while
	// its size is Offset and its modification time this.
	ReleasedModTime time.Time `json:"released_mod_time,omitzero"`
	// Streams is, for a container log whose lines are joined into events
	// each stream on its own (multiline), the end of each stream's last
	// acknowledged event past Offset. Offset stays at the first line of an
	// event still pending in one stream while the other's events after it
	// are acknowledged; the lines read again from Offset that those events
	// hold are not shipped again (as fragments, under other ids).
	Streams map[string]int64 `json:"streams,omitempty"`
	// Pending marks the entry of a file read from offset 0 that has no
	// complete first line yet, so no id (pendingID): nothing of it was
	// shipped.
	Pending bool `json:"pending,omitempty"`
	// Marks are where its last lines read ended and their bytes'
	// checksums: the line at Offset's (set as it moves), and, of a
	// generation replaced by a truncation, its last lines read. A file
	// that starts like it is its copy only if it holds one of them too
	// (copies.go).
	Marks []lineCheck `json:"marks,omitempty"`
}

// registryFile is the on-disk form; Checksum covers Entries so that a torn
// or corrupted write is detected.
type registryFile struct {
	Version  int               `json:"version"`
	Written  time.Time         `json:"written"`
	Checksum uint32            `json:"checksum"`
	Entries  []json.RawMessage `json:"entries"`
	// Replaced is the generations replaced lately by a truncation, kept
	// for their copies to be recognised after a restart too (copies.go).
	// The checksum covers them after Entries.
	Replaced []json.RawMessage `json:"replaced,omitempty"`
}

const (
	registryName   = "registry.json"
	registryBackup = "registry.json.bak"
)

// registry is the store of acknowledged offsets. Only acknowledgements move
// an offset forward; writes are atomic (temp file, fsync, rename, directory
// fsync) and the previous good copy is kept as a backup.
type registry struct {
	dir string

	// writeMu serialises flushes from snapshot to rename. flushLoop and
	// the shutdown may flush concurrently; without it an older snapshot could
	// be renamed in after a newer one, losing entries while dirty is
	// already false. It is held across disk I/O, so it is never taken with
	// mu held; puts and advances only wait for mu.
	writeMu sync.Mutex
	// mainGood is whether the main file loaded fine or was written by this
	// registry, so that it may become the backup. After a recovery it is
	// the corrupt file, and the backup must stay the copy that loaded.
	// Guarded by writeMu.
	mainGood bool

	mu      sync.Mutex
	entries map[string]*registryEntry
	// atDi is the ids of the entries by where their file lives
	// (registry_index.go): a scan or a file's opening looks up its own
	// entries, not all of a registry that may hold 100,000.
	atDi map[devIno][]string
	// replaced is the generations replaced lately, oldest first
	// (replacedGens).
	replaced []registryEntry
	dirty    bool
	// encoded is each entry's JSON as last written, and changed the ids
	// changed since the last flush took its copy: a flush encodes only the
	// entries that changed (registry_codec.go).
	encoded map[string]json.RawMessage
	changed map[string]struct{}
}

// openRegistry loads the registry in dir, falling back to the backup copy
// if the main file is torn or corrupt. recovered reports such a fallback.
func openRegistry(dir string) (r *registry, recovered error, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("creating registry directory: %w", err)
	}
	r = &registry{dir: dir, entries: map[string]*registryEntry{}, atDi: map[devIno][]string{},
		encoded: map[string]json.RawMessage{}, changed: map[string]struct{}{}}
	entries, errMain := readRegistryContents(filepath.Join(dir, registryName))
	if errMain == nil {
		r.load(entries)
		r.mainGood = true
		return r, nil, nil
	}
	if errors.Is(errMain, os.ErrNotExist) {
		entries, errBak := readRegistryContents(filepath.Join(dir, registryBackup))
		if errBak == nil {
			r.load(entries)
			return r, fmt.Errorf("registry file missing, recovered from backup"), nil
		}
		return r, nil, nil
	}
	entries, errBak := readRegistryContents(filepath.Join(dir, registryBackup))
	if errBak != nil {
		return nil, nil, fmt.Errorf("registry %s is unreadable (%v) and so is its backup (%v); move both aside to start over, which re-reads files from the start",
			filepath.Join(dir, registryName), errMain, errBak)
	}
	r.load(entries)
	return r, fmt.Errorf("registry file unreadable (%v), recovered from backup", errMain), nil
}

func (r *registry) load(c registryContents) {
	r.entries = make(map[string]*registryEntry, len(c.entries))
	r.atDi = make(map[devIno][]string, len(c.entries))
	r.encoded = make(map[string]json.RawMessage, len(c.entries))
	for _, e := range c.entries {
		r.set(e)
	}
	r.replaced = c.replaced
}

// registryContents is what a registry file holds.
type registryContents struct {
	entries  []*registryEntry
	replaced []registryEntry
}

func readRegistryFile(path string) ([]*registryEntry, error) {
	c, err := readRegistryContents(path)
	return c.entries, err
}

func readRegistryContents(path string) (registryContents, error) {
	var c registryContents
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	return decodeRegistry(path, data)
}

func entriesChecksum(lists ...[]json.RawMessage) uint32 {
	h := crc32.NewIEEE()
	for _, entries := range lists {
		for _, e := range entries {
			h.Write(e)
		}
	}
	return h.Sum32()
}

// find returns the entry for a file at di whose fingerprint the open file
// still matches.
func (r *registry) find(di devIno, f *os.File) (*registryEntry, error) {
	candidates := r.atDevIno(di)
	for i := range candidates {
		ok, err := candidates[i].Fingerprint.matches(f)
		if err != nil {
			return nil, err
		}
		if ok {
			return &candidates[i], nil
		}
	}
	return nil, nil
}

// put stores a copy of e.
func (r *registry) put(e registryEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.Updated = time.Now()
	r.set(&e)
	r.mark(e.ID)
}

// advance moves the acknowledged offset of file id forward.
func (r *registry) advance(id string, offset int64, m lineCheck) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[id]; ok && offset > e.Offset {
		e.Offset = offset
		e.Marks = nil
		if m.Len > 0 && m.End == offset {
			e.Marks = []lineCheck{m}
		}
		e.Updated = time.Now()
		r.mark(id)
	}
}

// setStreams records the streams' acknowledged ends past offset of file id
// (registryEntry.Streams).
func (r *registry) setStreams(id string, streams map[string]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[id]; ok && !maps.Equal(e.Streams, streams) {
		e.Streams = streams
		r.mark(id) // not only dirty: the entry's JSON kept from the last flush is stale
	}
}

// update applies fn to the entry of file id.
func (r *registry) update(id string, fn func(*registryEntry)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[id]; ok {
		fn(e)
		r.mark(id)
	}
}

func (r *registry) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[id]; ok {
		r.unindex(e)
		delete(r.entries, id)
		r.mark(id)
	}
}

func (r *registry) get(id string) (registryEntry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[id]
	if !ok {
		return registryEntry{}, false
	}
	return *e, true
}

// snapshot returns copies of all entries.
func (r *registry) snapshot() []registryEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]registryEntry, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, *e)
	}
	return out
}

// flush writes the registry if it changed since the last write. When it
// returns nil, everything put before the call is on disk.
func (r *registry) flush() error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	// Copy under mu and encode after, so puts and acknowledgements do not
	// wait for encoding. dirty is cleared here, not after the write: a
	// change made during the write marks it again for the next flush.
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return nil
	}
	snap := make([]registryEntry, 0, len(r.entries))
	raws := make([]json.RawMessage, 0, len(r.entries))
	for id, e := range r.entries {
		snap = append(snap, *e)
		raws = append(raws, r.encoded[id])
	}
	replaced := append([]registryEntry(nil), r.replaced...)
	clear(r.changed)
	r.dirty = false
	r.mu.Unlock()
	err := r.encodeChanged(snap, raws)
	if err == nil {
		err = r.writeEntries(raws, replaced)
	}
	if err != nil {
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
		return err
	}
	return nil
}

// write writes the entries of snap, every one encoded, and the replaced
// generations.
func (r *registry) write(snap, replaced []registryEntry) error {
	raws, err := encodeEntries(snap)
	if err != nil {
		return err
	}
	return r.writeEntries(raws, replaced)
}

// writeEntries writes the registry file of the entries' JSON and the
// replaced generations.
func (r *registry) writeEntries(raws []json.RawMessage, replaced []registryEntry) error {
	rep, err := encodeEntries(replaced)
	if err != nil {
		return err
	}
	data, err := encodeRegistry(time.Now().UTC(), raws, rep)
	if err != nil {
		return err
	}
	return r.writeAtomic(data)
}

// writeAtomic replaces the registry file with data: the current file becomes
// the backup if it is good, the new one is written to a temporary file,
// synced, renamed into place and the directory synced, so a crash leaves
// either the old or the new registry whole. The caller holds writeMu.
func (r *registry) writeAtomic(data []byte) error {
	main := filepath.Join(r.dir, registryName)
	tmp, err := os.CreateTemp(r.dir, registryName+".tmp*")
	if err != nil {
		return fmt.Errorf("writing registry: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing registry: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing registry: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing registry: %w", err)
	}
	if r.mainGood {
		if err := r.keepBackup(main); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp.Name(), main); err != nil {
		return fmt.Errorf("replacing registry: %w", err)
	}
	r.mainGood = true
	d, err := os.Open(r.dir)
	if err != nil {
		return fmt.Errorf("syncing registry directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing registry directory: %w", err)
	}
	return nil
}

// keepBackup makes the current main file the backup: a hard link under a
// temporary name renamed over the backup, so the backup is replaced whole.
func (r *registry) keepBackup(main string) error {
	link := filepath.Join(r.dir, registryBackup+".new")
	// A link left by a crash between link and rename would make Link fail
	// with EEXIST on every write from then on.
	if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("keeping registry backup: %w", err)
	}
	if err := os.Link(main, link); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// Removed from outside since it was loaded or written: keep
			// the backup there is rather than fail every write.
			return nil
		}
		// A filesystem without hard links: copy instead.
		if err := copyFileSynced(main, link); err != nil {
			return fmt.Errorf("keeping registry backup: %w", err)
		}
	}
	if err := os.Rename(link, filepath.Join(r.dir, registryBackup)); err != nil {
		return fmt.Errorf("keeping registry backup: %w", err)
	}
	return nil
}

// copyFileSynced copies src to a new file dst and syncs it.
func copyFileSynced(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// addReplaced remembers e, a generation replaced by a truncation, keeping
// the last most of those replaced within keep. Of the same generation
// added twice (by the harvester that read it, and from its entry), the
// furthest offset and the longest fingerprint are kept.
func (r *registry) addReplaced(e registryEntry, keep time.Duration, most int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.Updated = time.Now()
	r.replaced = slices.DeleteFunc(r.replaced, func(old registryEntry) bool {
		if old.ID != e.ID || old.DevIno != e.DevIno {
			return false
		}
		e.Offset = max(e.Offset, old.Offset)
		if old.Fingerprint.Len > e.Fingerprint.Len {
			e.Fingerprint = old.Fingerprint
		}
		if len(e.Marks) == 0 {
			e.Marks = old.Marks
		}
		return true
	})
	i := 0
	for i < len(r.replaced) && (e.Updated.Sub(r.replaced[i].Updated) > keep || len(r.replaced)-i >= most) {
		i++
	}
	r.replaced = append(r.replaced[i:len(r.replaced):len(r.replaced)], e)
	r.dirty = true
}

// replacedSince returns copies of the generations replaced after since.
func (r *registry) replacedSince(since time.Time) []registryEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []registryEntry
	for _, e := range r.replaced {
		if e.Updated.After(since) {
			out = append(out, e)
		}
	}
	return out
}

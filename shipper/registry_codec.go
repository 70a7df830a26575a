package shipper

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// The registry file is one JSON document, {"version":1, "written",
// "checksum", "replaced":[...], "entries":[...]}, written with the header
// and the replaced generations (a few) on the first line and each entry on
// a line of its own; the checksum covers the entries, then the replaced.
// Any JSON reader reads it; this one reads that layout in one pass over
// the bytes and decodes the entries in parallel: with encoding/json over the
// whole document (a validation pass, a pass copying each entry out, then
// each entry's own two), a registry of 100,000 files took over a second to
// load. A file of another layout (an older Sluice's, all on one line with
// the replaced after the entries, or edited by hand) is read the slow way.

// encodeRegistry writes the registry document of entries and replaced,
// each the JSON of one registryEntry.
func encodeRegistry(written time.Time, entries, replaced []json.RawMessage) ([]byte, error) {
	at, err := json.Marshal(written)
	if err != nil {
		return nil, fmt.Errorf("encoding registry: %w", err)
	}
	size := 128
	for _, e := range entries {
		size += len(e) + 2
	}
	for _, e := range replaced {
		size += len(e) + 1
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	fmt.Fprintf(buf, `{"version":1,"written":%s,"checksum":%d,`, at, entriesChecksum(entries, replaced))
	if len(replaced) > 0 {
		buf.WriteString(`"replaced":[`)
		for i, e := range replaced {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(e)
		}
		buf.WriteString(`],`)
	}
	buf.WriteString(`"entries":[`)
	for i, e := range entries {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
		buf.Write(e)
	}
	buf.WriteString("\n]}\n")
	return buf.Bytes(), nil
}

// encodeEntries returns the JSON of each of entries.
func encodeEntries(entries []registryEntry) ([]json.RawMessage, error) {
	raws := make([]json.RawMessage, len(entries))
	for i := range entries {
		raw, err := json.Marshal(&entries[i])
		if err != nil {
			return nil, fmt.Errorf("encoding registry entry: %w", err)
		}
		raws[i] = raw
	}
	return raws, nil
}

// decodeRegistry reads a registry document, path naming it in errors.
func decodeRegistry(path string, data []byte) (registryContents, error) {
	raw, ok := splitRegistry(data)
	if !ok {
		return decodeRegistrySlow(path, data)
	}
	var f registryFile
	if err := json.Unmarshal(raw.header, &f); err != nil || len(f.Entries) > 0 {
		return decodeRegistrySlow(path, data)
	}
	return decodeChecked(path, &f, raw.entries)
}

// decodeRegistrySlow reads a registry document of any layout.
func decodeRegistrySlow(path string, data []byte) (registryContents, error) {
	var f registryFile
	if err := json.Unmarshal(data, &f); err != nil {
		return registryContents{}, fmt.Errorf("decoding %s: %w", path, err)
	}
	return decodeChecked(path, &f, f.Entries)
}

// decodeChecked checks f's version and its checksum over entries and
// f.Replaced, and decodes them.
func decodeChecked(path string, f *registryFile, entries []json.RawMessage) (registryContents, error) {
	var c registryContents
	if f.Version != 1 {
		return c, fmt.Errorf("%s: unknown registry version %d", path, f.Version)
	}
	if sum := entriesChecksum(entries, f.Replaced); sum != f.Checksum {
		return c, fmt.Errorf("%s: checksum mismatch (torn or corrupt write)", path)
	}
	var err error
	if c.entries, err = decodeEntries(path, entries); err != nil {
		return c, err
	}
	for _, raw := range f.Replaced {
		var e registryEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return c, fmt.Errorf("decoding %s replaced entry: %w", path, err)
		}
		c.replaced = append(c.replaced, e)
	}
	return c, nil
}

// registryParts is a registry document split at its lines: the header
// (with an empty entry list) and each entry's JSON.
type registryParts struct {
	header  []byte
	entries []json.RawMessage
}

// splitRegistry splits a document of encodeRegistry's layout; ok is false
// for any other.
func splitRegistry(data []byte) (registryParts, bool) {
	const open, closing = `"entries":[`, "]}"
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 || !bytes.HasSuffix(data[:nl], []byte(open)) {
		return registryParts{}, false
	}
	header := append(append([]byte(nil), data[:nl]...), closing...)
	rest := bytes.TrimSuffix(data[nl+1:], []byte("\n"))
	if !bytes.HasSuffix(rest, []byte("\n"+closing)) {
		if bytes.Equal(rest, []byte(closing)) { // no entries
			return registryParts{header: header}, true
		}
		return registryParts{}, false
	}
	rest = rest[:len(rest)-len(closing)-1]
	entries := make([]json.RawMessage, 0, bytes.Count(rest, []byte("\n"))+1)
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
			if !bytes.HasSuffix(line, []byte(",")) {
				return registryParts{}, false
			}
			line = line[:len(line)-1]
		} else {
			rest = nil
		}
		entries = append(entries, line)
	}
	return registryParts{header: header, entries: entries}, true
}

// decodeEntries decodes the entries on every core.
func decodeEntries(path string, raw []json.RawMessage) ([]*registryEntry, error) {
	entries := make([]registryEntry, len(raw))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(raw)/1000))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(raw)/workers, (w+1)*len(raw)/workers
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				if err := json.Unmarshal(raw[i], &entries[i]); err != nil {
					errs[w] = fmt.Errorf("decoding %s entry: %w", path, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	out := make([]*registryEntry, len(entries))
	for i := range entries {
		out[i] = &entries[i]
	}
	return out, nil
}

// mark records that the entry of id changed (or went): the next flush
// writes the registry and encodes it again. The caller holds mu.
func (r *registry) mark(id string) {
	delete(r.encoded, id)
	r.changed[id] = struct{}{}
	r.dirty = true
}

// encodeChanged fills in raws, the JSON of snap's entries as last
// written, for the entries that changed since (nil), and keeps their new
// JSON for the next flush unless they changed again meanwhile. With
// 100,000 entries of which a few change every second, encoding them all
// for every write took 0.35 s of CPU.
func (r *registry) encodeChanged(snap []registryEntry, raws []json.RawMessage) error {
	var fresh []int
	for i := range snap {
		if raws[i] != nil {
			continue
		}
		raw, err := json.Marshal(&snap[i])
		if err != nil {
			return fmt.Errorf("encoding registry entry: %w", err)
		}
		raws[i] = raw
		fresh = append(fresh, i)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, i := range fresh {
		id := snap[i].ID
		if _, again := r.changed[id]; again {
			continue
		}
		if _, ok := r.entries[id]; ok {
			r.encoded[id] = raws[i]
		}
	}
	return nil
}

package shipper

import "slices"

// byDevIno returns copies of the entries, by where their file lives.
func (r *registry) byDevIno() map[devIno][]registryEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[devIno][]registryEntry, len(r.entries))
	for _, e := range r.entries {
		out[e.DevIno] = append(out[e.DevIno], *e)
	}
	return out
}

// atDevIno returns copies of the entries of the file at di.
func (r *registry) atDevIno(di devIno) []registryEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := r.atDi[di]
	if len(ids) == 0 {
		return nil
	}
	out := make([]registryEntry, 0, len(ids))
	for _, id := range ids {
		out = append(out, *r.entries[id])
	}
	return out
}

// hasDevIno reports whether an entry is of the file at di.
func (r *registry) hasDevIno(di devIno) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.atDi[di]) > 0
}

// set stores e under its id, replacing any entry of that id, and indexes
// it by where its file lives. The caller holds mu (or owns r).
func (r *registry) set(e *registryEntry) {
	if old, ok := r.entries[e.ID]; ok {
		r.unindex(old)
	}
	r.entries[e.ID] = e
	r.atDi[e.DevIno] = append(r.atDi[e.DevIno], e.ID)
}

// unindex takes e out of the index by where its file lives. The caller
// holds mu.
func (r *registry) unindex(e *registryEntry) {
	ids := slices.DeleteFunc(r.atDi[e.DevIno], func(id string) bool { return id == e.ID })
	if len(ids) == 0 {
		delete(r.atDi, e.DevIno)
		return
	}
	r.atDi[e.DevIno] = ids
}

package shipper

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

// hasDevIno reports whether an entry is of the file at di.
func (r *registry) hasDevIno(di devIno) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.entries {
		if e.DevIno == di {
			return true
		}
	}
	return false
}

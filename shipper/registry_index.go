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

package shipper

// scanned records the file's size as a scan found it and reports whether
// it changed since the last scan: only then does the scan wake the file's
// harvester (a write the notifications missed, or a truncation). A scan
// waking every open file's harvester every scan_interval made a node's
// thousand quiet files cost the shipper a thousand wake-ups a second on
// top of their harvesters' own polls.
func (h *harvester) scanned(size int64) bool {
	return h.scanSize.Swap(size) != size
}

package geoip

import (
	"encoding/binary"
	"net/netip"
	"strings"
)

// ClientIP picks the address to locate for a request: the left-most
// X-Forwarded-For entry that is a valid address outside the trusted proxy
// ranges, else sourceIP (the connecting peer). Entries are trimmed; an
// entry may itself hold several comma-separated addresses, or carry a port
// ("203.0.113.7:4711", "[2001:db8::1]:443"). Entries that are not addresses
// ("unknown", obfuscated identifiers) are passed over. IPv4-mapped IPv6
// addresses are unmapped and zones dropped. ok is false when no valid
// address is found at all.
//
// Spoofing trade-off: the secure rule walks X-Forwarded-For from the right,
// skipping trusted proxies, and takes the first untrusted entry, the
// address that the outermost trusted proxy actually saw. This function
// follows the product rule instead and takes the left-most untrusted entry:
// the original client as claimed, right even behind chains of untrusted
// intermediate proxies (a CDN, a corporate proxy), but forgeable: a client
// that sends its own "X-Forwarded-For: 1.2.3.4" is located at 1.2.3.4. The
// result is therefore fit for dashboards and statistics, never for access
// control or rate limiting; the connecting address stays in source.ip and
// the whole chain in nginx.x_forwarded_for.
func ClientIP(sourceIP string, xff []string, trusted []netip.Prefix) (netip.Addr, bool) {
	for _, entry := range xff {
		if strings.IndexByte(entry, ',') < 0 { // one address: the common case
			if a, ok := parseAddr(entry); ok && !contains(trusted, a) {
				return a, true
			}
			continue
		}
		for part := range strings.SplitSeq(entry, ",") {
			a, ok := parseAddr(part)
			if ok && !contains(trusted, a) {
				return a, true
			}
		}
	}
	return parseAddr(sourceIP)
}

// parseAddr parses an address, with or without a port or brackets.
func parseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		switch {
		case perr == nil:
			a = ap.Addr()
		case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil {
				return netip.Addr{}, false
			}
		default:
			return netip.Addr{}, false
		}
	}
	return a.Unmap().WithZone(""), true
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// routable reports whether a is a globally routable unicast address, one
// worth looking up. a must be unmapped.
func routable(a netip.Addr) bool {
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsLoopback(), a.IsPrivate(),
		a.IsLinkLocalUnicast(), a.IsMulticast():
		return false
	case a.Is4():
		return !reserved4(a.As4())
	default:
		return !reserved6(a.As16())
	}
}

// reserved4 reports IPv4 special-purpose ranges (RFC 6890 and successors)
// that netip's predicates do not cover.
func reserved4(b [4]byte) bool {
	v := binary.BigEndian.Uint32(b[:])
	return in4(v, 0, 0, 0, 0, 8) || // "this network"
		in4(v, 100, 64, 0, 0, 10) || // shared address space (carrier-grade NAT)
		in4(v, 192, 0, 0, 0, 24) || // IETF protocol assignments
		in4(v, 192, 0, 2, 0, 24) || // documentation (TEST-NET-1)
		in4(v, 192, 88, 99, 0, 24) || // deprecated 6to4 relay anycast
		in4(v, 198, 18, 0, 0, 15) || // benchmarking
		in4(v, 198, 51, 100, 0, 24) || // documentation (TEST-NET-2)
		in4(v, 203, 0, 113, 0, 24) || // documentation (TEST-NET-3)
		in4(v, 240, 0, 0, 0, 4) // reserved, and broadcast
}

// in4 reports whether v is in the prefix a.b.c.d/bits.
func in4(v uint32, a, b, c, d byte, bits int) bool {
	p := uint32(a)<<24 | uint32(b)<<16 | uint32(c)<<8 | uint32(d)
	return v>>(32-bits) == p>>(32-bits)
}

// reserved6 reports IPv6 addresses outside global unicast (2000::/3, which
// leaves out unique-local, link-local, multicast, discard, NAT64 and the
// IPv4-compatible forms), and the documentation and benchmarking ranges
// inside it.
func reserved6(b [16]byte) bool {
	hi := binary.BigEndian.Uint64(b[:8])
	return hi>>61 != 0b001 ||
		in6(hi, 0x2001_0db8_0000_0000, 32) || // documentation
		in6(hi, 0x3fff_0000_0000_0000, 20) || // documentation (RFC 9637)
		in6(hi, 0x2001_0002_0000_0000, 48) // benchmarking
}

// in6 reports whether the upper 64 bits hi are in the prefix p/bits.
func in6(hi, p uint64, bits int) bool { return hi>>(64-bits) == p>>(64-bits) }

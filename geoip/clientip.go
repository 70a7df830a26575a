package geoip

import (
	"encoding/binary"
	"net/netip"
	"strings"
)

// ClientIP picks the client of a request by nginx's real_ip_recursive rule:
// starting from peer, the connecting address, it walks X-Forwarded-For from
// the right while the address in hand is a trusted proxy, and takes the
// first address that is not: the address that the outermost trusted proxy
// actually saw. An untrusted peer is the client whatever its header says
// (anyone can send one), and entries left of the first untrusted one are
// never believed: a client that sends its own "X-Forwarded-For: 1.2.3.4"
// through a load balancer is still located where the load balancer saw it.
// When every address is trusted, the left-most is the client.
//
// Entries are trimmed; an entry may itself hold several comma-separated
// addresses, or carry a port ("203.0.113.7:4711", "[2001:db8::1]:443").
// Empty entries are passed over; an entry that is not an address
// ("unknown", an obfuscated identifier) ends the walk, as in nginx, and the
// trusted proxy that added it is the client. IPv4-mapped IPv6 addresses are
// unmapped and zones dropped. ok is false when peer is not an address.
func ClientIP(peer string, xff []string, trusted []netip.Prefix) (netip.Addr, bool) {
	client, ok := parseAddr(peer)
	if !ok {
		return netip.Addr{}, false
	}
	for i := len(xff) - 1; i >= 0; i-- {
		entry := xff[i]
		if strings.IndexByte(entry, ',') < 0 { // one address: the common case
			var done bool
			if client, done = next(client, entry, trusted); done {
				return client, true
			}
			continue
		}
		parts := strings.Split(entry, ",")
		for j := len(parts) - 1; j >= 0; j-- {
			var done bool
			if client, done = next(client, parts[j], trusted); done {
				return client, true
			}
		}
	}
	return client, true
}

// next takes one step of ClientIP's walk: from client, the address in
// hand, to the X-Forwarded-For entry s that client reported. done is true
// when the walk ends at the returned address: client is untrusted, or s is
// not an address.
func next(client netip.Addr, s string, trusted []netip.Prefix) (netip.Addr, bool) {
	if !contains(trusted, client) {
		return client, true
	}
	if strings.TrimSpace(s) == "" {
		return client, false
	}
	a, ok := parseAddr(s)
	if !ok {
		return client, true
	}
	return a, false
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

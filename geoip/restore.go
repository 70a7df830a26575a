package geoip

import (
	"net/netip"

	"github.com/sluicelog/sluice/parser"
)

// Document fields Restore writes besides source.ip and client.ip.
var (
	sourceAddressField = parser.NewKey("source.address")
	clientAddressField = parser.NewKey("client.address")
)

// Clients restores the real client of documents written behind proxies,
// with or without GeoIP databases. Safe for concurrent use.
type Clients struct {
	trusted []netip.Prefix
}

// NewClients returns a Clients that trusts the proxies in trusted (CIDR
// ranges or addresses, as geoip.trusted_proxies; nil means
// DefaultTrustedProxies).
func NewClients(trusted []string) (*Clients, error) {
	if trusted == nil {
		trusted = DefaultTrustedProxies()
	}
	p, err := ParsePrefixes(trusted, "geoip.trusted_proxies")
	if err != nil {
		return nil, err
	}
	return &Clients{trusted: p}, nil
}

// Restore puts the document's client, as ClientIP picks it from source.ip
// (the connecting peer) and nginx.x_forwarded_for, in source.ip and
// source.address, and the peer in client.ip and client.address: in ECS the
// source is the request's origin, where Filebeat's nginx module puts it
// too, and the client the end of the connection the server saw. A document
// whose client is its peer is left alone.
func (c *Clients) Restore(doc *parser.Doc) {
	if !doc.HasKey(xffField) { // most documents: nothing to walk
		return
	}
	if addr, moved, ok := clientOf(doc, c.trusted); ok && moved {
		move(doc, addr.String())
	}
}

// clientOf returns the document's client, and whether it is another
// address than the peer in source.ip. ok is false when source.ip is not an
// address.
func clientOf(doc *parser.Doc, trusted []netip.Prefix) (addr netip.Addr, moved, ok bool) {
	v, _ := doc.GetKey(sourceIPField)
	peer, _ := v.(string)
	xff, has := doc.GetKey(xffField)
	if !has {
		addr, ok = parseAddr(peer)
		return addr, false, ok
	}
	if addr, ok = ClientIP(peer, forwardedFor(xff), trusted); !ok {
		return addr, false, false
	}
	p, _ := parseAddr(peer)
	return addr, p != addr, true
}

// move writes ip, the client's address, to source.ip and source.address,
// after moving the peer to client.ip and client.address.
func move(doc *parser.Doc, ip any) {
	peer, _ := doc.GetKey(sourceIPField)
	doc.SetKey(clientIPField, peer)
	if a, ok := doc.GetKey(sourceAddressField); ok {
		doc.SetKey(clientAddressField, a)
	}
	doc.SetKey(sourceIPField, ip)
	doc.SetKey(sourceAddressField, ip)
}

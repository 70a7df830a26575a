package geoip

import (
	"net/netip"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	defaults, err := ParsePrefixes(DefaultTrustedProxies(), "x")
	if err != nil {
		t.Fatal(err)
	}
	lb := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	tests := []struct {
		name    string
		source  string
		xff     []string
		trusted []netip.Prefix
		want    string // "" for none
	}{
		{"no header", "81.2.69.142", nil, defaults, "81.2.69.142"},
		{"empty header", "81.2.69.142", []string{}, defaults, "81.2.69.142"},
		{"empty entries", "10.0.0.7", []string{"", "  "}, defaults, "10.0.0.7"},
		{"right-most untrusted", "10.0.0.7", []string{"81.2.69.1", "81.2.69.2", "10.0.0.8"}, defaults, "81.2.69.2"},
		{"forged left-most entry", "10.0.0.7", []string{"6.6.6.6", "81.2.69.2"}, defaults, "81.2.69.2"},
		{"forged trusted-looking entry", "10.0.0.7", []string{"10.9.9.9", "81.2.69.2"}, defaults, "81.2.69.2"},
		{"untrusted peer's header not believed", "81.2.69.142", []string{"6.6.6.6"}, defaults, "81.2.69.142"},
		{"trusted entries passed over", "10.0.0.7", []string{"81.2.69.2", "192.168.1.1", "127.0.0.1"}, defaults, "81.2.69.2"},
		{"spaces", "10.0.0.7", []string{"  81.2.69.1 ", "\t10.0.0.1"}, defaults, "81.2.69.1"},
		{"unsplit header", "10.0.0.7", []string{"6.6.6.6, 81.2.69.3 ,10.0.0.1"}, defaults, "81.2.69.3"},
		{"split and unsplit", "10.0.0.7", []string{"6.6.6.6", "81.2.69.3, 10.0.0.1", "10.0.0.2"}, defaults, "81.2.69.3"},
		{"invalid entry ends the walk", "10.0.0.7", []string{"81.2.69.4", "unknown", "10.0.0.1"}, defaults, "10.0.0.1"},
		{"out of range", "10.0.0.7", []string{"999.1.1.1"}, defaults, "10.0.0.7"},
		{"all trusted", "10.0.0.7", []string{"10.1.1.1", "172.16.0.1", "fd00::1"}, defaults, "10.1.1.1"},
		{"ipv6", "10.0.0.7", []string{"2001:218::1", "10.0.0.1"}, defaults, "2001:218::1"},
		{"ipv6 trusted", "fd00::7", []string{"2001:218::2", "fd00::1"}, defaults, "2001:218::2"},
		{"ipv4-mapped", "10.0.0.7", []string{"::ffff:81.2.69.5"}, defaults, "81.2.69.5"},
		{"mapped trusted", "10.0.0.7", []string{"81.2.69.6", "::ffff:10.0.0.1"}, defaults, "81.2.69.6"},
		{"zone dropped", "10.0.0.7", []string{"81.2.69.7", "fe80::1%eth0"}, defaults, "81.2.69.7"},
		{"ports", "10.0.0.7", []string{"81.2.69.8:4711"}, defaults, "81.2.69.8"},
		{"bracketed ipv6 with port", "10.0.0.7", []string{"[2001:218::3]:443"}, defaults, "2001:218::3"},
		{"bracketed ipv6", "10.0.0.7", []string{"[2001:218::4]"}, defaults, "2001:218::4"},
		{"untrusted private entry is the client", "198.51.100.2", []string{"192.168.1.1"}, lb, "192.168.1.1"},
		{"custom trusted range", "198.51.100.2", []string{"6.6.6.6", "81.2.69.9", "198.51.100.1"}, lb, "81.2.69.9"},
		{"private peer untrusted under custom ranges", "10.0.0.7", []string{"81.2.69.9"}, lb, "10.0.0.7"},
		{"nothing trusted", "10.0.0.7", []string{"10.1.1.1", "81.2.69.10"}, nil, "10.0.0.7"},
		{"source with spaces", " 81.2.69.11 ", nil, defaults, "81.2.69.11"},
		{"mapped source", "::ffff:81.2.69.12", nil, defaults, "81.2.69.12"},
		{"mapped trusted source", "::ffff:10.0.0.7", []string{"81.2.69.12"}, defaults, "81.2.69.12"},
		{"invalid source", "not-an-ip", nil, defaults, ""},
		{"empty", "", nil, defaults, ""},
		{"empty with chain", "", []string{"81.2.69.1"}, defaults, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ClientIP(tt.source, tt.xff, tt.trusted)
			if tt.want == "" {
				if ok {
					t.Errorf("ClientIP = %v, want none", got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Errorf("ClientIP = %v, %v; want %s", got, ok, tt.want)
			}
		})
	}
}

func TestRoutable(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"8.8.8.8", true},
		{"81.2.69.142", true},
		{"1.1.1.1", true},
		{"100.63.255.255", true},
		{"100.128.0.0", true},
		{"198.20.0.1", true},
		{"223.255.255.255", true},
		{"2001:4860:4860::8888", true},
		{"2001:218::1", true},
		{"2a00:1450::1", true},

		{"10.0.0.1", false},         // private
		{"172.16.5.4", false},       // private
		{"192.168.1.1", false},      // private
		{"127.0.0.1", false},        // loopback
		{"169.254.169.254", false},  // link-local
		{"224.0.0.1", false},        // multicast
		{"239.255.255.250", false},  // multicast
		{"0.0.0.0", false},          // unspecified
		{"0.1.2.3", false},          // "this network"
		{"100.64.0.1", false},       // carrier-grade NAT
		{"100.127.255.255", false},  // carrier-grade NAT
		{"192.0.0.8", false},        // IETF protocol assignments
		{"192.0.2.1", false},        // documentation
		{"198.51.100.7", false},     // documentation
		{"203.0.113.9", false},      // documentation
		{"198.18.0.1", false},       // benchmarking
		{"198.19.255.255", false},   // benchmarking
		{"192.88.99.1", false},      // 6to4 relay
		{"240.0.0.1", false},        // reserved
		{"255.255.255.255", false},  // broadcast
		{"::", false},               // unspecified
		{"::1", false},              // loopback
		{"fe80::1", false},          // link-local
		{"fd12:3456::1", false},     // unique local
		{"ff02::1", false},          // multicast
		{"2001:db8::1", false},      // documentation
		{"3fff::1", false},          // documentation
		{"2001:2::1", false},        // benchmarking
		{"64:ff9b::808:808", false}, // NAT64
		{"100::1", false},           // discard
		{"::8.8.8.8", false},        // IPv4-compatible (deprecated)
	}
	for _, tt := range tests {
		if got := routable(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("routable(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if routable(netip.Addr{}) {
		t.Error("the zero Addr is routable")
	}
}

// FuzzClientIP checks the rule's invariants on arbitrary headers: the
// client is the peer or one of the header's addresses; an untrusted peer
// is always the client; and an entry added left of the header (a forged
// one) never changes the client unless every address right of it is
// trusted.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.7", "6.6.6.6, 81.2.69.1", "1.2.3.4")
	f.Add("81.2.69.142", "10.0.0.1", "6.6.6.6")
	f.Add("10.0.0.7", "unknown, 10.0.0.1", "6.6.6.6")
	f.Add("::ffff:10.0.0.7", "[2001:218::1]:443,  ,", "x")
	trusted, err := ParsePrefixes(DefaultTrustedProxies(), "x")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, peer, xff, forged string) {
		got, ok := ClientIP(peer, []string{xff}, trusted)
		p, pok := parseAddr(peer)
		if ok != pok {
			t.Fatalf("ok %v for peer %q", ok, peer)
		}
		if !ok {
			return
		}
		if !contains(trusted, p) && got != p {
			t.Fatalf("untrusted peer %v, client %v", p, got)
		}
		found := got == p
		for part := range strings.SplitSeq(xff, ",") {
			if a, ok := parseAddr(part); ok && a == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("client %v is neither the peer %q nor in %q", got, peer, xff)
		}
		if contains(trusted, got) {
			return // the walk reached the left end or an invalid entry
		}
		if again, _ := ClientIP(peer, []string{forged, xff}, trusted); again != got {
			t.Fatalf("forged %q moved the client from %v to %v (peer %q, header %q)", forged, got, again, peer, xff)
		}
	})
}

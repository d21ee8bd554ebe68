package egress

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// Policy is what outbound calls may reach. The zero value is the safe
// default: https only, no blocked range allowed.
type Policy struct {
	// AllowHTTP lets URLs use plain http (https is required otherwise).
	AllowHTTP bool
	// Allow lists ranges that are reachable although they are in a
	// blocked range (an internal receiver on a private network).
	Allow []netip.Prefix
	// Self lists the server's own API addresses: never reachable, even in
	// an allowed range.
	Self []netip.AddrPort
}

// blocked is one range that is refused by default, with its name.
type blocked struct {
	prefix netip.Prefix
	name   string
}

var blockedRanges = func() []blocked {
	var out []blocked
	for _, r := range []struct{ cidr, name string }{
		{"0.0.0.0/8", "this network"},
		{"10.0.0.0/8", "private (RFC 1918)"},
		{"100.64.0.0/10", "carrier-grade NAT (RFC 6598)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local (cloud metadata service)"},
		{"172.16.0.0/12", "private (RFC 1918)"},
		{"192.0.0.0/24", "IETF protocol assignments"},
		{"192.0.2.0/24", "documentation"},
		{"192.168.0.0/16", "private (RFC 1918)"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation"},
		{"203.0.113.0/24", "documentation"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved and broadcast"},
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible IPv6"},
		{"100::/64", "discard-only"},
		{"2001::/32", "Teredo"},
		{"2001:db8::/32", "documentation"},
		{"fc00::/7", "unique-local"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local"},
		{"ff00::/8", "multicast"},
	} {
		out = append(out, blocked{netip.MustParsePrefix(r.cidr), r.name})
	}
	return out
}()

// Embedded IPv4: NAT64 and 6to4 addresses carry an IPv4 address that a
// translator on the path may connect to.
var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour  = netip.MustParsePrefix("2002::/16")
)

// BlockedError says that an address may not be reached, and why.
type BlockedError struct {
	Addr  netip.Addr
	Range string // the blocked range, e.g. "loopback (127.0.0.0/8)"
}

func (e *BlockedError) Error() string {
	if !e.Addr.IsValid() {
		return "blocked: " + e.Range
	}
	return fmt.Sprintf("address %s is blocked: %s; the operator may allow it with --webhook-allow-cidr", e.Addr, e.Range)
}

// CheckAddr returns a *BlockedError when addr (any form: IPv4, IPv6,
// IPv4-mapped IPv6, with a zone) may not be reached, nil otherwise.
func (p Policy) CheckAddr(addr netip.Addr) error {
	addr = addr.WithZone("")
	plain := addr.Unmap()
	for _, a := range p.Allow {
		if a.Contains(plain) || a.Contains(addr) {
			return nil
		}
	}
	if r, ok := blockedRange(plain); ok {
		return &BlockedError{Addr: addr, Range: r}
	}
	return nil
}

func blockedRange(a netip.Addr) (string, bool) {
	if !a.IsValid() {
		return "invalid address", true
	}
	if a.Is6() {
		var v4 [4]byte
		b := a.As16()
		switch {
		case nat64.Contains(a):
			copy(v4[:], b[12:])
		case nat64Local.Contains(a):
			return "local-use NAT64 (64:ff9b:1::/48)", true
		case sixToFour.Contains(a):
			copy(v4[:], b[2:6])
		}
		if v4 != [4]byte{} {
			if r, ok := blockedRange(netip.AddrFrom4(v4)); ok {
				return "embeds " + netip.AddrFrom4(v4).String() + ", " + r, true
			}
		}
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(a) {
			return r.name + " (" + r.prefix.String() + ")", true
		}
	}
	return "", false
}

// CheckAddrPort is CheckAddr, and refuses the server's own API too.
func (p Policy) CheckAddrPort(ap netip.AddrPort) error {
	a := ap.Addr().WithZone("").Unmap()
	for _, s := range p.Self {
		if s.Port() == ap.Port() && s.Addr().WithZone("").Unmap() == a {
			return &BlockedError{Addr: a, Range: fmt.Sprintf("the server's own API (port %d)", ap.Port())}
		}
	}
	return p.CheckAddr(ap.Addr())
}

// Control is a net.Dialer Control function: it refuses to connect to an
// address the policy blocks. It runs on the resolved address of every
// connection attempt, which defeats DNS rebinding between a check and
// the connection.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedError{Range: fmt.Sprintf("unparsable address %q (%s)", address, network)}
	}
	return p.CheckAddrPort(ap)
}

// URLIssue checks a tenant-given URL before it is stored: "" when it may
// be registered, else the rule it breaks. Only literal IPs are checked
// here; a host name is resolved and checked at every connection.
func (p Policy) URLIssue(u *url.URL) string {
	switch {
	case u.Scheme == "http" && !p.AllowHTTP:
		return "must use https (the operator has not allowed plain http webhooks)"
	case u.Scheme != "https" && u.Scheme != "http":
		return "must use https"
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if err := p.CheckAddr(a); err != nil {
			return "must not point at a blocked network: " + err.(*BlockedError).Range
		}
		return ""
	}
	// Numeric forms that some resolvers read as IPv4 (2130706433,
	// 0x7f.1, 127.1): refuse rather than guess.
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last != "" && (strings.Trim(last, "0123456789") == "" || strings.HasPrefix(strings.ToLower(last), "0x")) {
		return "must have a DNS host name or a standard IP literal (dotted IPv4, bracketed IPv6)"
	}
	return ""
}

// ParsePrefix reads an allowlist entry: a CIDR (10.1.0.0/16, fd00::/8) or
// a single address (10.1.2.3, taken as /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q: want a CIDR such as 10.1.0.0/16 or an address", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: want a CIDR such as 10.1.0.0/16 or an address", s)
	}
	a = a.WithZone("").Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

package egress

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestCheckAddr(t *testing.T) {
	for _, tt := range []struct {
		addr  string
		block string // substring of the range, "" when reachable
	}{
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"169.254.169.254", "link-local (cloud metadata service)"},
		{"10.1.2.3", "RFC 1918"},
		{"172.16.0.1", "RFC 1918"},
		{"172.31.255.255", "RFC 1918"},
		{"192.168.1.1", "RFC 1918"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"0.0.0.0", "this network"},
		{"0.1.2.3", "this network"},
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"192.0.2.10", "documentation"},
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fd00::1", "unique-local"},
		{"ff02::1", "multicast"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "metadata"},
		{"::127.0.0.1", "IPv4-compatible"},
		{"64:ff9b::7f00:1", "embeds 127.0.0.1"},
		{"2002:a00:1::", "embeds 10.0.0.1"},
		{"8.8.8.8", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"2606:4700::1111", ""},
		{"64:ff9b::808:808", ""},
	} {
		err := Policy{}.CheckAddr(netip.MustParseAddr(tt.addr))
		switch {
		case tt.block == "" && err != nil:
			t.Errorf("%s: %v, want reachable", tt.addr, err)
		case tt.block != "" && (err == nil || !strings.Contains(err.Error(), tt.block)):
			t.Errorf("%s: %v, want blocked as %q", tt.addr, err, tt.block)
		}
	}
}

func TestAllowAndSelf(t *testing.T) {
	p := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.1.0.0/16")},
		Self: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:8080")}}
	for addr, ok := range map[string]bool{
		"127.0.0.1:9000": true, "[::ffff:127.0.0.1]:9000": true, "10.1.2.3:443": true,
		"127.0.0.2:9000": false, "10.2.0.1:443": false, "[::1]:9000": false,
		"127.0.0.1:8080": false, "[::ffff:127.0.0.1]:8080": false, // the server's own API, though allowed
	} {
		err := p.Control("tcp", addr, nil)
		if (err == nil) != ok {
			t.Errorf("Control(%s) = %v, want reachable %v", addr, err, ok)
		}
	}
}

func TestURLIssue(t *testing.T) {
	for _, tt := range []struct {
		url   string
		p     Policy
		issue string // substring, "" when accepted
	}{
		{"https://hooks.example.com/x", Policy{}, ""},
		{"https://hooks.example.com:8443/x", Policy{}, ""},
		{"https://localhost/x", Policy{}, ""}, // names are checked when dialled
		{"http://hooks.example.com/x", Policy{}, "must use https"},
		{"http://hooks.example.com/x", Policy{AllowHTTP: true}, ""},
		{"https://127.0.0.1/x", Policy{}, "loopback"},
		{"https://[::1]:8443/x", Policy{}, "loopback"},
		{"https://[::ffff:127.0.0.1]/x", Policy{}, "loopback"},
		{"https://169.254.169.254/latest/meta-data", Policy{}, "metadata"},
		{"https://10.0.0.5/x", Policy{}, "RFC 1918"},
		{"https://10.0.0.5/x", Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}}, ""},
		{"https://[fd00::1]/x", Policy{}, "unique-local"},
		{"https://2130706433/x", Policy{}, "standard IP literal"},
		{"https://0x7f.1/x", Policy{}, "standard IP literal"},
		{"https://127.1/x", Policy{}, "standard IP literal"},
		{"https://8.8.8.8/x", Policy{}, ""},
	} {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		got := tt.p.URLIssue(u)
		if (tt.issue == "") != (got == "") || !strings.Contains(got, tt.issue) {
			t.Errorf("URLIssue(%s, %+v) = %q, want %q", tt.url, tt.p, got, tt.issue)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{"10.1.2.3": "10.1.2.3/32", "10.1.2.3/16": "10.1.0.0/16", "fd00::/8": "fd00::/8",
		"::ffff:10.0.0.1": "10.0.0.1/32", " 127.0.0.1/32 ": "127.0.0.1/32"} {
		if p, err := ParsePrefix(in); err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "localhost", "10.0.0.0/33", "10.0.0"} {
		if _, err := ParsePrefix(in); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", in)
		}
	}
}

// FuzzPolicy: no input makes the checks panic, and an allowed literal IP
// URL is one whose address CheckAddr lets through.
func FuzzPolicy(f *testing.F) {
	for _, s := range []string{"https://127.0.0.1/x", "https://[::ffff:10.0.0.1]:8/", "http://0x7f.1/", "https://[fe80::1%25eth0]/", "10.0.0.0/8", "::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParsePrefix(s)
		_ = Policy{}.Control("tcp", s, nil)
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		if (Policy{AllowHTTP: true}).URLIssue(u) == "" {
			if a, err := netip.ParseAddr(u.Hostname()); err == nil && (Policy{}).CheckAddr(a) != nil {
				t.Errorf("URLIssue accepted %q whose address %s is blocked", s, a)
			}
		}
	})
}

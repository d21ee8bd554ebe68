package fleet

import (
	"errors"
	"strconv"
	"strings"
)

// pattern is a parsed name pattern such as "h1-h100-p{n:02}": literal text
// and placeholders for the 1-based index within an entry.
type pattern struct {
	segs []segment
	// hasN tells whether a placeholder occurs, so that counts above 1 give
	// distinct names.
	hasN bool
}

// segment is literal text, or a placeholder when width > 0 (the minimum
// number of digits; 1 for a plain {n}).
type segment struct {
	lit   string
	width int
}

var errPattern = errors.New(`bad name pattern: braces must enclose {n} or {n:0W} with W from 1 to 9`)

// parsePattern parses a name pattern; it returns errPattern for braces that
// are not a placeholder.
func parsePattern(s string) (pattern, error) {
	var p pattern
	for s != "" {
		i := strings.IndexAny(s, "{}")
		if i < 0 {
			p.segs = append(p.segs, segment{lit: s})
			break
		}
		if i > 0 {
			p.segs = append(p.segs, segment{lit: s[:i]})
		}
		s = s[i:]
		var w int
		switch {
		case strings.HasPrefix(s, "{n}"):
			w, s = 1, s[len("{n}"):]
		case len(s) >= 6 && s[:4] == "{n:0" && s[4] >= '1' && s[4] <= '9' && s[5] == '}':
			w, s = int(s[4]-'0'), s[6:]
		default:
			return pattern{}, errPattern
		}
		p.segs = append(p.segs, segment{width: w})
		p.hasN = true
	}
	return p, nil
}

// appendName appends the name for index n to buf.
func (p pattern) appendName(buf []byte, n int) []byte {
	for _, s := range p.segs {
		if s.width == 0 {
			buf = append(buf, s.lit...)
			continue
		}
		for d := digits(n); d < s.width; d++ {
			buf = append(buf, '0')
		}
		buf = strconv.AppendInt(buf, int64(n), 10)
	}
	return buf
}

// name returns the name for index n.
func (p pattern) name(n int) string { return string(p.appendName(nil, n)) }

func digits(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

// isSlug reports whether s is a lowercase DNS label (RFC 1123): 1 to 63
// characters, lowercase letters, digits and hyphens, a letter or digit at
// each end.
func isSlug(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isHostname reports whether s matches
// ^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,251}[a-zA-Z0-9])?$: at most 253 characters of
// letters, digits, dots and hyphens, a letter or digit at each end.
func isHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	if !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

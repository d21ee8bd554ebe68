package workload

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of a request.
const (
	// MaxNodes is the most nodes one request may ask for; it matches the
	// largest fleet file (fleet.MaxNodes).
	MaxNodes = 1_000_000
	// MaxDurationMin is the longest window in minutes: 10 years of 365.25
	// days.
	MaxDurationMin = 10 * 36525 * 24 * 60 / 100
	// MaxIDLen is the longest request ID in bytes.
	MaxIDLen = 64
)

// Header is the only header line Parse accepts.
const Header = "id,nodes,start,duration_min"

// columns are the header's names, in order.
var columns = strings.Split(Header, ",")

// Request is one reservation: Nodes whole nodes for the window [Start, End()).
type Request struct {
	// ID is unique in its file: 1 to MaxIDLen of A-Z, a-z, 0-9, '.', '_'
	// and '-'.
	ID    string
	Nodes int
	// Start is in UTC, whatever offset the file wrote it with.
	Start time.Time
	// Duration is a whole number of minutes, 1 to MaxDurationMin.
	Duration time.Duration
	// Line is the 1-based line of the request in its file.
	Line int
}

// End returns the first instant after the request's window.
func (r Request) End() time.Time { return r.Start.Add(r.Duration) }

// ParseError reports the first problem of a workload file. Line is 1-based;
// Column is a header name ("nodes"), or empty when the problem is the line
// as a whole (a wrong number of fields, malformed CSV, a wrong header);
// Value is the offending field, Rule what was expected.
type ParseError struct {
	Line   int
	Column string
	Value  string
	Rule   string
}

// Error formats e as `line 7: duration_min "-5": must be ...`.
func (e *ParseError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Rule)
	}
	return fmt.Sprintf("line %d: %s %q: %s", e.Line, e.Column, e.Value, e.Rule)
}

// Rules, in words, as ParseError.Rule carries them.
var (
	ruleID       = fmt.Sprintf("must be 1 to %d of A-Z, a-z, 0-9, '.', '_' and '-'", MaxIDLen)
	ruleNodes    = fmt.Sprintf("must be a whole number of nodes from 1 to %d", MaxNodes)
	ruleStart    = "must be an RFC 3339 time such as 2027-01-03T07:00:00Z"
	ruleDuration = fmt.Sprintf("must be a positive whole number of minutes, at most %d (10 years)", MaxDurationMin)
)

// bom is the UTF-8 byte order mark some spreadsheet programs write first.
const bom = "\uFEFF"

// Parse reads a workload: the header line Header, then one request a line.
// A UTF-8 byte order mark, CRLF line ends, CSV quoting and blank lines are
// accepted. It returns the requests in file order (nil for a file with
// only the header), or a *ParseError for the first broken rule: a missing
// or different header, a line without exactly four fields, an invalid or
// repeated id (the error names the first line), nodes outside 1 to
// MaxNodes, a start that is not RFC 3339, a duration outside 1 to
// MaxDurationMin minutes. A read error of r is returned wrapped. Parse
// reads r to the end; callers bound its size.
func Parse(r io.Reader) ([]Request, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(len(bom)); err == nil && string(b) == bom {
		_, _ = br.Discard(len(bom)) // cannot fail: the bytes were peeked
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // counted here, for a message naming the columns
	cr.ReuseRecord = true

	rec, err := cr.Read()
	switch {
	case errors.Is(err, io.EOF):
		return nil, &ParseError{Line: 1, Rule: "missing header: want " + Header}
	case err != nil:
		return nil, csvError(err)
	}
	if !slices.Equal(rec, columns) {
		return nil, &ParseError{Line: 1, Rule: fmt.Sprintf("header must be %s (got %s)", Header, strings.Join(rec, ","))}
	}

	var reqs []Request
	first := map[string]int{} // id -> its line
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return reqs, nil
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(columns) {
			return nil, &ParseError{Line: line, Rule: fmt.Sprintf("want %d fields (%s), got %d", len(columns), Header, len(rec))}
		}
		q, err := parseRequest(rec, line)
		if err != nil {
			return nil, err
		}
		if l, dup := first[q.ID]; dup {
			return nil, &ParseError{Line: line, Column: "id", Value: q.ID, Rule: fmt.Sprintf("must be unique; first at line %d", l)}
		}
		first[q.ID] = line
		reqs = append(reqs, q)
	}
}

// parseRequest checks the fields of one record, in column order.
func parseRequest(rec []string, line int) (Request, error) {
	fail := func(col int, rule string) (Request, error) {
		return Request{}, &ParseError{Line: line, Column: columns[col], Value: rec[col], Rule: rule}
	}
	id := rec[0]
	if !validID(id) {
		return fail(0, ruleID)
	}
	nodes, ok := whole(rec[1], MaxNodes)
	if !ok {
		return fail(1, ruleNodes)
	}
	start, err := time.Parse(time.RFC3339, rec[2])
	if err != nil {
		return fail(2, ruleStart)
	}
	minutes, ok := whole(rec[3], MaxDurationMin)
	if !ok {
		return fail(3, ruleDuration)
	}
	return Request{
		ID:       strings.Clone(id), // rec is reused by the reader
		Nodes:    nodes,
		Start:    start.UTC(),
		Duration: time.Duration(minutes) * time.Minute,
		Line:     line,
	}, nil
}

// whole parses s as a decimal number from 1 to limit: ASCII digits only, no
// sign or spaces.
func whole(s string, limit int) (int, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > limit {
		return 0, false
	}
	return n, true
}

func validID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// csvError turns a malformed-CSV error into a *ParseError at its line.
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &ParseError{Line: pe.Line, Rule: "malformed CSV: " + pe.Err.Error()}
	}
	return fmt.Errorf("workload: read: %w", err)
}

// Package valid carries input validation failures from the domain packages
// to the edges (API, CLI) without either side knowing the other: each issue
// names the field, the offending value and the rule it broke.
package valid

import (
	"fmt"
	"strings"
)

// Issue is one broken rule: Field is a path such as
// "sites[0].pods[2].power_domain", Value the offending input as text, Rule
// what was expected, in words.
type Issue struct {
	Field string
	Value string
	Rule  string
}

func (i Issue) String() string {
	if i.Value == "" {
		return fmt.Sprintf("%s: %s", i.Field, i.Rule)
	}
	return fmt.Sprintf("%s: %s (got %s)", i.Field, i.Rule, i.Value)
}

// Error is a list of issues found in one input. A nil or empty *Error is no
// error; use Err to return it.
type Error struct {
	Issues []Issue
}

// Add records an issue; value is formatted with %v and quoted when it is a
// string.
func (e *Error) Add(field string, value any, rule string, args ...any) {
	if len(args) > 0 {
		rule = fmt.Sprintf(rule, args...)
	}
	var v string
	switch x := value.(type) {
	case nil:
	case string:
		v = fmt.Sprintf("%q", x)
	default:
		v = fmt.Sprintf("%v", x)
	}
	e.Issues = append(e.Issues, Issue{Field: field, Value: v, Rule: rule})
}

// Len returns the number of issues recorded.
func (e *Error) Len() int {
	if e == nil {
		return 0
	}
	return len(e.Issues)
}

// Err returns e as an error, or nil when no issue was recorded.
func (e *Error) Err() error {
	if e.Len() == 0 {
		return nil
	}
	return e
}

// Error lists the issues, at most ten, one per line after the first.
func (e *Error) Error() string {
	const max = 10
	var b strings.Builder
	fmt.Fprintf(&b, "invalid input: %d issue(s)", len(e.Issues))
	for i, is := range e.Issues {
		if i == max {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Issues)-max)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(is.String())
	}
	return b.String()
}

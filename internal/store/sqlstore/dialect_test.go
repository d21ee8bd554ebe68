package sqlstore

import "testing"

func TestRebind(t *testing.T) {
	for _, tc := range []struct {
		name     string
		numbered bool
		in, want string
	}{
		{"question marks stay", false, `SELECT ? WHERE a = ?`, `SELECT ? WHERE a = ?`},
		{"numbered", true, `SELECT ? WHERE a = ? AND b IN (?,?)`, `SELECT $1 WHERE a = $2 AND b IN ($3,$4)`},
		{"literals are left alone", true, `SELECT '?' || ? WHERE a = 'it''s ?' AND b = ?`, `SELECT '?' || $1 WHERE a = 'it''s ?' AND b = $2`},
		{"none", true, `SELECT 1`, `SELECT 1`},
	} {
		d := Dialect{NumberedParams: tc.numbered}
		if got := d.rebind(tc.in); got != tc.want {
			t.Errorf("%s: rebind(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestBatchRows(t *testing.T) {
	for _, tc := range []struct {
		maxParams, cols, want int
	}{
		{0, 10, 500},
		{32766, 10, 500},
		{999, 10, 99},
		{5, 10, 1},
	} {
		d := Dialect{MaxParams: tc.maxParams}
		if got := d.batchRows(tc.cols); got != tc.want {
			t.Errorf("batchRows(%d) with MaxParams %d = %d, want %d", tc.cols, tc.maxParams, got, tc.want)
		}
	}
}

func TestValues(t *testing.T) {
	if got, want := values(2, 3), "(?,?,?),(?,?,?)"; got != want {
		t.Errorf("values(2, 3) = %q, want %q", got, want)
	}
	if got, want := list(3), "?,?,?"; got != want {
		t.Errorf("list(3) = %q, want %q", got, want)
	}
}

package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"
	"pgregory.net/rapid"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/unit"
)

// TestEncodeSchedule checks that encodeSchedule writes what json.Marshal
// writes of the steps, which decodeSchedule reads back.
func TestEncodeSchedule(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var steps []lease.Step
		for range rapid.IntRange(0, 4).Draw(t, "n") {
			steps = append(steps, lease.Step{
				From:  time.UnixMicro(rapid.Int64().Draw(t, "from")),
				GPUs:  unit.GPUs(rapid.Int64().Draw(t, "gpus")),
				Power: unit.Power(rapid.Int64().Draw(t, "power")),
			})
		}
		want := make([]scheduleStep, len(steps))
		for i, s := range steps {
			want[i] = scheduleStep{FromUS: micros(s.From), GPUs: int64(s.GPUs), PowerW: int64(s.Power)}
		}
		b, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeSchedule(steps); got != string(b) {
			t.Fatalf("encodeSchedule = %s, want %s", got, b)
		}
	})
}

// TestInsertAllUndo checks that a bulk insert that fails half-way, after
// statements that succeeded, stores nothing and leaves the transaction
// usable in SQLite (no savepoint), and that one into an append-only table
// leaves it broken, so that Update rolls it back.
func TestInsertAllUndo(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		`CREATE TABLE items (id TEXT NOT NULL PRIMARY KEY, n INTEGER NOT NULL) STRICT`,
		`CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL) STRICT`,
		`CREATE TRIGGER log_no_delete BEFORE DELETE ON log BEGIN SELECT RAISE(ABORT, 'append-only'); END`,
		`INSERT INTO items (id, n) VALUES ('taken', 0)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// 2 columns, at most 8 rows a statement.
	s := New(Dialect{Name: "sqlite", MaxParams: 16, UndoByRowid: true}, db, db)
	defer s.Close()
	items := bulkInsert{table: "items", columns: "id, n", cols: 2}
	log := bulkInsert{table: "log", columns: "seq, n", cols: 2, appendOnly: true}
	errRow := errors.New("row refused")
	count := func(table string) int {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rows := func(ids ...string) func(i int, args []any) ([]any, error) {
		return func(i int, args []any) ([]any, error) {
			if ids[i] == "" {
				return nil, errRow
			}
			return append(args, ids[i], int64(i)), nil
		}
	}
	ids := func(n, bad int, badID string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "item-" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		}
		out[bad] = badID
		return out
	}
	keep := func(err error) error { return err }
	err = s.Update(ctx, func(etx engine.Tx) error {
		t := etx.(*tx)
		// A taken ID in the third statement, and a row that cannot be
		// made in the second: nothing of either batch stays.
		if err := t.insertAll(ctx, items, 20, rows(ids(20, 17, "taken")...), keep); err == nil {
			return errors.New("insert of a taken ID: err = nil")
		}
		if err := t.insertAll(ctx, items, 20, rows(ids(20, 9, "")...), keep); !errors.Is(err, errRow) {
			return errors.New("insert of a row that cannot be made: err = " + err.Error())
		}
		// Usable: this one stays.
		return t.insertAll(ctx, items, 20, rows(ids(20, 0, "first")...), keep)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := count("items"); got != 21 {
		t.Errorf("%d items after the failed batches and one batch of 20, want 21", got)
	}
	// An append-only table: the transaction cannot commit.
	logRows := func(i int, args []any) ([]any, error) {
		if i == 12 {
			return nil, errRow
		}
		return append(args, nil, int64(i)), nil
	}
	err = s.Update(ctx, func(etx engine.Tx) error {
		t := etx.(*tx)
		if err := t.insertAll(ctx, log, 20, logRows, keep); !errors.Is(err, errRow) {
			return errors.New("insert into the log: err = " + err.Error())
		}
		return nil // ignore the error: Update must still refuse to commit
	})
	if err == nil {
		t.Errorf("Update after a failed insert into an append-only table: err = nil, want an error")
	}
	if got := count("log"); got != 0 {
		t.Errorf("%d log rows after the failed batch, want 0", got)
	}
}

// TestAllocIndexReloads checks when the allocation index reloads: once at
// first use, not after the store's own commits or rollbacks, and again
// after a write outside Update on the store's connection or a commit of
// another connection.
func TestAllocIndexReloads(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		return db
	}
	db := open()
	for _, q := range []string{
		`CREATE TABLE nodes (name TEXT NOT NULL PRIMARY KEY, ord INTEGER NOT NULL UNIQUE, retired_us INTEGER)`,
		`INSERT INTO nodes (name, ord) VALUES ('a', 1), ('b', 2), ('c', 3)`,
		`CREATE TABLE allocations (id TEXT NOT NULL, lease_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
			node_from INTEGER NOT NULL, node_to INTEGER NOT NULL, start_us INTEGER NOT NULL, end_us INTEGER NOT NULL)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := New(Dialect{Name: "sqlite", MaxParams: 32766, AllocIndex: true, UndoByRowid: true}, db, db)
	defer s.Close()
	t0 := time.Unix(0, 0)
	n := 0
	insert := func(rollback bool) error {
		n++
		a := lease.Allocation{ID: "a" + string(rune('a'+n)), LeaseID: "l", TenantID: "t", NodeFrom: 1, NodeTo: 3,
			Start: t0.Add(time.Duration(n) * time.Hour), End: t0.Add(time.Duration(n+1) * time.Hour)}
		err := s.Update(ctx, func(tx engine.Tx) error {
			if err := tx.InsertAllocations(ctx, []lease.Allocation{a}); err != nil {
				return err
			}
			if rollback {
				return errors.New("roll back")
			}
			return nil
		})
		if rollback && err != nil && err.Error() == "roll back" {
			return nil
		}
		return err
	}
	check := func(what string, want int) {
		t.Helper()
		if got := s.index.loads; got != want {
			t.Errorf("after %s: %d loads, want %d", what, got, want)
		}
	}
	for _, rollback := range []bool{false, false, true, false} {
		if err := insert(rollback); err != nil {
			t.Fatal(err)
		}
	}
	check("the store's own commits and a rollback", 1)
	if _, err := s.DB().Exec(`INSERT INTO allocations VALUES ('sql', 'l', 't', 1, 2, 0, 1)`); err != nil {
		t.Fatal(err)
	}
	if err := insert(false); err != nil {
		t.Fatal(err)
	}
	check("a write through DB", 2)
	other := open()
	defer other.Close()
	if _, err := other.Exec(`INSERT INTO allocations VALUES ('other', 'l', 't', 1, 2, 1, 2)`); err != nil {
		t.Fatal(err)
	}
	if err := insert(false); err != nil {
		t.Fatal(err)
	}
	check("a commit of another connection", 3)
	if err := insert(false); err != nil {
		t.Fatal(err)
	}
	check("the store's next commit", 3)
	var count int
	if err := db.QueryRow(`SELECT COUNT(*) FROM allocations`).Scan(&count); err != nil || count != 8 {
		t.Errorf("%d allocations stored, %v; want 8", count, err)
	}
}

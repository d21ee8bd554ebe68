package sqlstore

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/neocloud/neocloud/internal/engine"
)

// TestCheckpointer: with a dialect's Checkpoint, the store copies the
// write-ahead log into the database file in the background, from a
// read-only connection, every CheckpointEvery commits; Close stops it.
func TestCheckpointer(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	// The writer never checkpoints itself: the file grows only by the
	// store's checkpoints.
	write, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	write.SetMaxOpenConns(1)
	if _, err := write.Exec(`CREATE TABLE items (n INTEGER NOT NULL, pad TEXT NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	read, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	s := New(Dialect{Name: "sqlite", Checkpoint: `PRAGMA wal_checkpoint(PASSIVE)`, CheckpointEvery: 4}, read, write)
	defer s.Close()
	for i := range 8 {
		err := s.Update(ctx, func(etx engine.Tx) error {
			_, err := etx.(*tx).c.exec(ctx, `INSERT INTO items (n, pad) VALUES (?, ?)`, i, strings.Repeat("x", 20_000))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); size() < before+8*20_000; {
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes (from %d) after 8 commits of 20 kB: no checkpoint", size(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestOpenSpool: a spool left by a run is indexed oldest first; files
// half-written by a crash are removed; other files are left alone.
func TestOpenSpool(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, rejectedDir), 0o750); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, fileName(7)), "seven..")
	write(t, filepath.Join(dir, fileName(3)), "three")
	write(t, filepath.Join(dir, tmpPrefix+"123"), "half a batch")
	write(t, filepath.Join(dir, "notes.txt"), "an operator's notes")
	write(t, filepath.Join(dir, rejectedDir, fileName(9)), "nine")
	s, err := openSpool(dir, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]entry{{3, 5}, {7, 7}}, s.entries, cmp.AllowUnexported(entry{})); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if s.bytes != 12 || s.next != 10 || s.rejBytes != 4 {
		t.Errorf("bytes %d, next %d, rejected bytes %d; want 12, 10, 4", s.bytes, s.next, s.rejBytes)
	}
	if _, err := os.Stat(filepath.Join(dir, tmpPrefix+"123")); !os.IsNotExist(err) {
		t.Errorf("the half-written file is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("notes.txt: %v", err)
	}

	e, ok := s.take()
	if !ok || e.num != 3 {
		t.Fatalf("take = %v, %v; want batch 3", e, ok)
	}
	// Over the bound: the batch being pushed stays, the next oldest goes.
	s.max = 20
	dropped, err := s.add([]byte(strings.Repeat("n", 10)))
	if err != nil {
		t.Fatal(err)
	}
	if dropped != 1 || len(s.entries) != 2 || s.entries[0].num != 3 || s.entries[1].num != 10 {
		t.Errorf("dropped %d, entries %v; want 1 dropped (batch 7), batches 3 and 10 left", dropped, s.entries)
	}
	if _, err := os.Stat(filepath.Join(dir, fileName(7))); !os.IsNotExist(err) {
		t.Errorf("batch 7's file is still there: %v", err)
	}
	if err := s.remove(e); err != nil {
		t.Fatal(err)
	}
	if bytes, batches := s.size(); bytes != 10 || batches != 1 {
		t.Errorf("size = %d bytes, %d batches; want 10, 1", bytes, batches)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, n := range names {
		if strings.HasPrefix(filepath.Base(n), tmpPrefix) {
			t.Errorf("temporary file %s left behind", n)
		}
	}
}

package agent

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// spoolExt is the extension of a spooled batch's file; its name is its
// number, zero-padded so that names sort in spool order.
const spoolExt = ".csv"

// tmpPrefix starts the names of files being written: never pushed, removed
// on start.
const tmpPrefix = ".tmp-"

// rejectedDir is the spool's subfolder for batches the server refused.
const rejectedDir = "rejected"

// entry is a spooled batch: its file number and size.
type entry struct {
	num  uint64
	size int64
}

// spool is the on-disk queue of encoded batches, oldest first, bounded in
// bytes. One goroutine adds, another takes; both may run at once.
type spool struct {
	dir         string
	max         int64
	rejectedMax int64

	mu       sync.Mutex
	entries  []entry // oldest first
	bytes    int64
	next     uint64 // the number of the next file
	inflight uint64 // the file being pushed; 0 when none
	rejected []entry
	rejBytes int64

	// wake is signalled (without blocking) when a batch is added.
	wake chan struct{}
}

// openSpool creates dir and dir/rejected when missing, removes files left
// half-written by a crash, and indexes the batches a previous run spooled.
func openSpool(dir string, maxBytes, rejectedMax int64) (*spool, error) {
	s := &spool{dir: dir, max: maxBytes, rejectedMax: rejectedMax, next: 1, wake: make(chan struct{}, 1)}
	if err := os.MkdirAll(filepath.Join(dir, rejectedDir), 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var err error
	if s.entries, s.bytes, err = scan(dir, true); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	if s.rejected, s.rejBytes, err = scan(filepath.Join(dir, rejectedDir), false); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	for _, es := range [][]entry{s.entries, s.rejected} {
		for _, e := range es {
			s.next = max(s.next, e.num+1)
		}
	}
	return s, nil
}

// scan lists the batch files in dir, oldest first, with their total size;
// with clean it removes leftover temporary files.
func scan(dir string, clean bool) ([]entry, int64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	var es []entry
	var total int64
	for _, de := range des {
		name := de.Name()
		if clean && strings.HasPrefix(name, tmpPrefix) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, 0, err
			}
			continue
		}
		num, ok := fileNum(name)
		if !ok || !de.Type().IsRegular() {
			continue
		}
		info, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		es = append(es, entry{num: num, size: info.Size()})
		total += info.Size()
	}
	slices.SortFunc(es, func(a, b entry) int { return cmp.Compare(a.num, b.num) })
	return es, total, nil
}

// fileNum returns the number in a batch file's name.
func fileNum(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, spoolExt)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil && n > 0
}

func fileName(num uint64) string { return fmt.Sprintf("%020d%s", num, spoolExt) }

func (s *spool) path(num uint64) string { return filepath.Join(s.dir, fileName(num)) }

func (s *spool) rejectedPath(num uint64) string {
	return filepath.Join(s.dir, rejectedDir, fileName(num))
}

// add writes data as the newest batch — to a temporary file, synced, then
// renamed, so that a crash leaves either the whole batch or none — and then
// drops the oldest batches while the spool holds more than its bound. It
// returns how many it dropped. The batch being pushed is never dropped; the
// new one may be, when nothing older is left to drop.
func (s *spool) add(data []byte) (dropped int, err error) {
	s.mu.Lock()
	num := s.next
	s.next++
	s.mu.Unlock()

	if err := writeFileSync(s.dir, fileName(num), data); err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, entry{num: num, size: int64(len(data))})
	s.bytes += int64(len(data))
	for s.bytes > s.max {
		i := 0
		if len(s.entries) > 0 && s.entries[0].num == s.inflight {
			i = 1
		}
		if i >= len(s.entries) {
			break
		}
		e := s.entries[i]
		if err := os.Remove(s.path(e.num)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return dropped, fmt.Errorf("spool: drop: %w", err)
		}
		s.entries = slices.Delete(s.entries, i, i+1)
		s.bytes -= e.size
		dropped++
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return dropped, nil
}

// writeFileSync writes data to dir/name through a synced temporary file
// and syncs dir, so that the rename survives a crash.
func writeFileSync(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// take marks the oldest batch as being pushed and returns it; ok is false
// when the spool is empty.
func (s *spool) take() (e entry, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 {
		return entry{}, false
	}
	s.inflight = s.entries[0].num
	return s.entries[0], true
}

// read returns a taken batch's bytes.
func (s *spool) read(e entry) ([]byte, error) {
	return os.ReadFile(s.path(e.num))
}

// release puts a taken batch back, to be pushed again.
func (s *spool) release(entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = 0
}

// remove deletes a taken batch: the server has it, or its file is gone.
func (s *spool) remove(e entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = 0
	s.forget(e)
	if err := os.Remove(s.path(e.num)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// forget drops e from the index; s.mu is held.
func (s *spool) forget(e entry) {
	if i := slices.IndexFunc(s.entries, func(x entry) bool { return x.num == e.num }); i >= 0 {
		s.bytes -= s.entries[i].size
		s.entries = slices.Delete(s.entries, i, i+1)
	}
}

// reject moves a taken batch to rejected/ and deletes the oldest rejected
// batches while they hold more than their bound. It returns how many it
// deleted.
func (s *spool) reject(e entry) (deleted int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = 0
	s.forget(e)
	if err := os.Rename(s.path(e.num), s.rejectedPath(e.num)); err != nil {
		return 0, fmt.Errorf("spool: reject: %w", err)
	}
	s.rejected = append(s.rejected, e)
	s.rejBytes += e.size
	for s.rejBytes > s.rejectedMax && len(s.rejected) > 0 {
		old := s.rejected[0]
		if err := os.Remove(s.rejectedPath(old.num)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return deleted, fmt.Errorf("spool: rejected: %w", err)
		}
		s.rejected = s.rejected[1:]
		s.rejBytes -= old.size
		deleted++
	}
	return deleted, syncDir(s.dir)
}

// size returns the bytes and batches the spool holds (rejected ones
// apart).
func (s *spool) size() (bytes int64, batches int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes, len(s.entries)
}

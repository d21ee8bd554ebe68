package fleet

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func FuzzDebug(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		lf, _ := os.OpenFile(fmt.Sprintf("/tmp/fuzzlog-%d", os.Getpid()), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		defer lf.Close()
		os.WriteFile(fmt.Sprintf("/tmp/fuzzlast-%d", os.Getpid()), data, 0o644)
		st := time.Now()
		s, err := Parse(data)
		fmt.Fprintf(lf, "len=%d parse=%v err=%v\n", len(data), time.Since(st), err != nil)
		if err != nil {
			return
		}
		st = time.Now()
		_, err = s.Expand()
		fmt.Fprintf(lf, "  expand=%v err=%v\n", time.Since(st), err != nil)
	})
}

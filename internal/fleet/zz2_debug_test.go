package fleet

import (
	"os"
	"testing"
	"time"
)

func TestDebugHang(t *testing.T) {
	for _, p := range []string{"/tmp/hang1.yaml", "/tmp/hang2.yaml"} {
		data, _ := os.ReadFile(p)
		st := time.Now()
		s, err := Parse(data)
		t.Log(p, "parse", time.Since(st), err)
		if err != nil {
			continue
		}
		st = time.Now()
		_, err = s.Expand()
		t.Log("expand", time.Since(st), err)
	}
}

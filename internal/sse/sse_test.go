package sse_test

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/sse"
)

// Each Send reaches the client at once (flushed), under the stream's
// headers.
func TestSendFlushes(t *testing.T) {
	got := make(chan bool)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sse.Open(w, time.Second)
		s.Send([]byte(": hello\n\n"))
		<-got // the client read the line before the handler returns
		s.Send([]byte("data: 1\n\n"))
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"} {
		if v := resp.Header.Get(k); v != want {
			t.Errorf("%s: %q, want %q", k, v, want)
		}
	}
	br := bufio.NewReader(resp.Body)
	for _, want := range []string{": hello\n", "\n"} {
		if line, err := br.ReadString('\n'); err != nil || line != want {
			t.Fatalf("read %q, %v; want %q", line, err, want)
		}
	}
	close(got)
	if line, err := br.ReadString('\n'); err != nil || line != "data: 1\n" {
		t.Fatalf("read %q, %v", line, err)
	}
}

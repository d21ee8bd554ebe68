package agent

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/meter/dcgm"
)

func TestExporterRead(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		html     bool
		body     string
		readings int
		says     string // a substring of the error; "" for none
		is       error
	}{
		{name: "ok", status: 200, body: `DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",Hostname="n1"} 5` + "\n", readings: 1},
		{name: "not found", status: 404, body: "404 page not found", says: "404 Not Found"},
		{name: "a web page", status: 200, html: true, body: "<html>login</html>", says: "text/html"},
		{name: "broken DCGM text", status: 200, body: `DCGM_FI_DEV_GPU_UTIL{gpu="0" 5` + "\n", says: "line 1", is: dcgm.ErrFormat},
		{name: "other text: no readings", status: 200, body: "hello\n", readings: 0},
		{name: "unmapped", status: 200, body: `DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a"} 5` + "\n", says: `UUID="GPU-a"`, is: dcgm.ErrUnmapped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tt.html {
					w.Header().Set("Content-Type", "text/html; charset=utf-8")
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer ts.Close()
			x, err := newExporter(ts.URL+"/metrics", ts.Client(), nil)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := x.Read(t.Context(), start)
			if tt.says == "" {
				if err != nil || len(rs) != tt.readings {
					t.Fatalf("Read = %d readings, %v; want %d", len(rs), err, tt.readings)
				}
				if len(rs) > 0 && !rs[0].Time.Equal(start) {
					t.Errorf("reading at %s, want %s", rs[0].Time, start)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), ts.URL) {
				t.Fatalf("Read = %v, want an error naming the URL and saying %q", err, tt.says)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Read = %v, want it to wrap %v", err, tt.is)
			}
		})
	}

	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		ts := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
		defer ts.Close()
		defer close(release)
		x, err := newExporter(ts.URL+"/metrics", ts.Client(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if _, err := x.Read(ctx, start); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Read of a silent exporter = %v, want the deadline", err)
		}
	})
}

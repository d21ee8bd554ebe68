package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/client"
)

func TestStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/denied" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(403)
			_, _ = w.Write([]byte(`{"title":"Forbidden","status":403,"detail":"role tenant-viewer lacks permission events:read"}`))
			return
		}
		if r.Header.Get("Last-Event-ID") != "7" || r.URL.Query().Get("x") != "1" {
			t.Errorf("Last-Event-ID %q, query %q", r.Header.Get("Last-Event-ID"), r.URL.RawQuery)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte(": hello\n\nid: 8\nevent: lease.created\ndata: {\"a\":1}\n\n: heartbeat\n\nid: 9\nevent: multi\ndata: one\ndata: two\n\n"))
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	var got []client.ServerEvent
	err = c.Stream(context.Background(), "/events", map[string][]string{"x": {"1"}}, "7", func(ev client.ServerEvent) error {
		got = append(got, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []client.ServerEvent{{ID: "8", Event: "lease.created", Data: `{"a":1}`}, {ID: "9", Event: "multi", Data: "one\ntwo"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	stop := errors.New("stop")
	if err := c.Stream(context.Background(), "/events", map[string][]string{"x": {"1"}}, "7", func(client.ServerEvent) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("a callback error: Stream = %v, want it back", err)
	}
	var pe *client.ProblemError
	if err := c.Stream(context.Background(), "/denied", nil, "", func(client.ServerEvent) error { return nil }); !errors.As(err, &pe) || pe.Status != 403 {
		t.Errorf("refused stream: err = %v, want a 403 problem", err)
	}
}

package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/neocloud/neocloud/internal/client"
)

func TestProblemError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("authorization header = %q", r.Header.Get("Authorization"))
		}
		switch r.URL.Path {
		case "/problem":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(422)
			_, _ = w.Write([]byte(`{"title":"Unprocessable Entity","status":422,"detail":"validation failed",
				"errors":[{"message":"unknown GPU model","location":"body.sites[0].pods[0].model","value":"TPU"}]}`))
		case "/plain":
			w.WriteHeader(502)
			_, _ = w.Write([]byte("bad gateway\n"))
		default:
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = c.Do(ctx, "POST", "/problem", nil, map[string]int{"a": 1}, nil)
	var pe *client.ProblemError
	if !errors.As(err, &pe) || pe.Status != 422 {
		t.Fatalf("err = %v", err)
	}
	if want := "body.sites[0].pods[0].model: unknown GPU model (got TPU)"; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q lacks %q", err, want)
	}
	err = c.Do(ctx, "GET", "/plain", nil, nil, nil)
	if !errors.As(err, &pe) || pe.Status != 502 || !strings.Contains(err.Error(), "bad gateway") {
		t.Errorf("plain error = %v", err)
	}
	var out struct{ OK bool }
	if err := c.Do(ctx, "GET", "/ok", nil, nil, &out); err != nil || !out.OK {
		t.Errorf("ok = %v, %v", out, err)
	}
	if _, err := client.New("notaurl", ""); err == nil {
		t.Error("client.New accepted a non-URL")
	}
}

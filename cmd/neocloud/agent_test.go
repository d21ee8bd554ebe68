package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/meter"
)

// TestAgentCommand runs `neocloud agent` against a DCGM exporter and a
// telemetry endpoint on 127.0.0.1: it maps the exporter's hostname with
// --mapping, delivers batches with its name in their IDs, serves its
// metrics, and stops cleanly when its context ends.
func TestAgentCommand(t *testing.T) {
	scrape, err := os.ReadFile(filepath.Join("..", "..", "internal", "meter", "dcgm", "testdata", "h100-sxm-8gpu.prom"))
	if err != nil {
		t.Fatal(err)
	}
	scrape = bytes.ReplaceAll(scrape, []byte(`Hostname="h100-a-n0017"`), []byte(`Hostname="dgx017.cluster.internal"`))
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(scrape) }))
	defer exporter.Close()

	const key = "nc_test_agent_key_8c1f"
	batches := make(chan meter.Batch, 100)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/telemetry" || r.Header.Get("Authorization") != "Bearer "+key {
			http.Error(w, "wrong path or key", http.StatusUnauthorized)
			return
		}
		b, err := meter.DecodeCSV(body, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		batches <- b
		_, _ = io.WriteString(w, `{"batch_id":"`+b.ID+`","accepted":8,"duplicates":0,"too_late":0}`)
	}))
	defer server.Close()

	dir := t.TempDir()
	mapping := filepath.Join(dir, "mapping.yaml")
	if err := os.WriteFile(mapping, []byte("hosts:\n  dgx017.cluster.internal: h100-a-n0017\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr := newSyncBuffer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"agent", "--server", server.URL, "--scrape", exporter.URL + "/metrics",
			"--interval", "1s", "--buffer-dir", filepath.Join(dir, "spool"), "--buffer-max", "1MiB", "--mapping", mapping,
			"--name", "rack-07", "--metrics-addr", "127.0.0.1:0", "--log-format", "json"},
			envOf(map[string]string{"NEOCLOUD_TOKEN": key}), strings.NewReader(""), io.Discard, stderr)
	}()

	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	select {
	case b := <-batches:
		if !strings.HasPrefix(b.ID, "rack-07:") || b.Agent != "rack-07" {
			t.Errorf("batch %s from agent %q, want rack-07", b.ID, b.Agent)
		}
		if len(b.Readings) != 8 || b.Readings[0].Node != "h100-a-n0017" {
			t.Errorf("batch %s: %d readings, first on %q; want 8 on h100-a-n0017", b.ID, len(b.Readings), b.Readings[0].Node)
		}
	case err := <-done:
		t.Fatalf("agent exited: %v\nstderr:\n%s", err, stderr)
	case <-deadline.C:
		t.Fatalf("no batch in 30 s\nstderr:\n%s", stderr)
	}

	addrRE := regexp.MustCompile(`"msg":"serving metrics","addr":"(127\.0\.0\.1:\d+)"`)
	var addr string
	for addr == "" {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case <-stderr.changed:
		case <-deadline.C:
			t.Fatalf("the agent logged no metrics address\nstderr:\n%s", stderr)
		}
	}
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "neocloud_agent_batches_pushed_total"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %s, want 200 with %q", path, resp.Status, want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("agent returned %v after its context ended, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent still running 10 s after its context ended")
	}
	if strings.Contains(stderr.String(), key) {
		t.Error("the agent logged its API key")
	}
}

func TestAgentFlags(t *testing.T) {
	dir := t.TempDir()
	badMapping := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badMapping, []byte("hosts:\n  a: \"no spaces allowed\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"agent", "--server", "http://127.0.0.1:1", "--buffer-dir", dir}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		says string
	}{
		{"no key", append(base, "--scrape", "http://127.0.0.1:9400/metrics"), nil, "API key is required"},
		{"no exporter", base, map[string]string{"NEOCLOUD_TOKEN": "k"}, "--scrape URL"},
		{"bad size", append(base, "--scrape", "http://h:9400/metrics", "--buffer-max", "lots"), map[string]string{"NEOCLOUD_TOKEN": "k"}, "--buffer-max"},
		{"bad mapping", append(base, "--scrape", "http://h:9400/metrics", "--mapping", badMapping), map[string]string{"NEOCLOUD_TOKEN": "k"}, "hosts.a"},
		{"missing mapping", append(base, "--scrape", "http://h:9400/metrics", "--mapping", filepath.Join(dir, "none.yaml")), map[string]string{"NEOCLOUD_TOKEN": "k"}, "--mapping"},
		{"bad scrape URL", append(base, "--scrape", "h:9400/metrics"), map[string]string{"NEOCLOUD_TOKEN": "k"}, "scrape URL"},
		{"bad name", append(base, "--scrape", "http://h:9400/metrics", "--name", "rack 7"), map[string]string{"NEOCLOUD_TOKEN": "k"}, "name"},
		{"bad log level", append(base, "--log-level", "loud"), nil, "--log-level"},
		{"nvml without the build tag", append(base, "--nvml"), map[string]string{"NEOCLOUD_TOKEN": "k"}, "without NVML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := neocloudEnv(t, tt.env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("agent %v = %v, want an error about %s", tt.args, err, tt.says)
			}
		})
	}
}

func TestAgentParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"256MiB": 256 << 20, "256 MiB": 256 << 20, "1GB": 1e9, "1gib": 1 << 30, "4096": 4096, "10B": 10, "512KiB": 512 << 10, "2TB": 2e12,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "1.5GB", "12XB", "MiB", "9999999999999TiB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestAgentName(t *testing.T) {
	for host, want := range map[string]string{
		"gpu-node-17.cluster.internal": "gpu-node-17.cluster.internal",
		"weird host/name":              "weird-host-name",
		"":                             "agent",
		strings.Repeat("a", 80):        strings.Repeat("a", 64),
	} {
		if got := agentName(func() (string, error) { return host, nil }); got != want {
			t.Errorf("agentName(%q) = %q, want %q", host, got, want)
		}
	}
	if got := agentName(func() (string, error) { return "", errors.New("no host") }); got != "agent" {
		t.Errorf("agentName without a hostname = %q, want agent", got)
	}
}

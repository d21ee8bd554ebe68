package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/api"
)

// freeAddr returns a 127.0.0.1 address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serveOn runs `neocloud serve` on addr with data dir data until stop is
// called; it returns once the server answers /healthz.
func serveOn(t *testing.T, addr, data string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := newSyncBuffer()
	exited := make(chan error, 1)
	go func() {
		exited <- run(ctx, []string{"serve", "--listen", addr, "--data", data, "--log-format", "json"}, envOf(nil), strings.NewReader(""), out, out)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("serve exited: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not healthy in time\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() {
		cancel()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve still running 30 s after stop")
		}
	}
}

// dcgmScrape is an exporter's answer for nodes of 8 GPUs at scrape k.
func dcgmScrape(nodes []string, k int64) string {
	var b strings.Builder
	for _, m := range []struct{ name, typ string }{{"DCGM_FI_DEV_GPU_UTIL", "gauge"}, {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter"}, {"DCGM_FI_DEV_POWER_USAGE", "gauge"}} {
		fmt.Fprintf(&b, "# HELP %s test\n# TYPE %s %s\n", m.name, m.name, m.typ)
		for _, n := range nodes {
			for g := range 8 {
				v := map[string]int64{"DCGM_FI_DEV_GPU_UTIL": 50 + int64(g), "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": k * 7_000_000, "DCGM_FI_DEV_POWER_USAGE": 650}[m.name]
				fmt.Fprintf(&b, "%s{gpu=\"%d\",UUID=\"GPU-%s-%d\",device=\"nvidia%d\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"%s\"} %d\n", m.name, g, n, g, g, n, v)
			}
		}
	}
	return b.String()
}

// TestAgentRidesThroughOutageAndRestart runs a real server and a real
// agent: the server stops (an outage) and starts again on the same data
// (a restart) while the agent scrapes; every reading the agent read is
// counted by the server exactly once.
func TestAgentRidesThroughOutageAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	data, addr := t.TempDir(), freeAddr(t)
	stop := serveOn(t, addr, data)
	srvURL := "http://" + addr
	adminKey, err := os.ReadFile(filepath.Join(data, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	admin := func(args ...string) string {
		t.Helper()
		out, _, err := neocloudEnv(t, map[string]string{"NEOCLOUD_SERVER": srvURL, "NEOCLOUD_TOKEN": strings.TrimSpace(string(adminKey))}, args...)
		if err != nil {
			t.Fatalf("neocloud %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	fleetFile := filepath.Join(t.TempDir(), "lab.yaml")
	admin("fleet", "generate", "--preset", "small-lab", "-f", fleetFile)
	admin("fleet", "apply", "-f", fleetFile)
	var nodes api.NodePage
	if err := json.Unmarshal([]byte(admin("nodes", "list", "-o", "json")), &nodes); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes.Items {
		if n.GPUs == 8 && len(names) < 2 {
			names = append(names, n.Name)
		}
	}
	var key api.KeyCreated
	if err := json.Unmarshal([]byte(admin("keys", "create", "--role", "operator-agent", "--name", "rack-1", "-o", "json")), &key); err != nil {
		t.Fatal(err)
	}

	var k atomic.Int64
	var frozen atomic.Bool
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if frozen.Load() {
			http.Error(w, "stopped", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, dcgmScrape(names, k.Add(1)))
	}))
	defer exporter.Close()

	metricsAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agentOut := newSyncBuffer()
	agentDone := make(chan error, 1)
	go func() {
		agentDone <- run(ctx, []string{"agent", "--server", srvURL, "--scrape", exporter.URL + "/metrics", "--interval", "300ms",
			"--buffer-dir", filepath.Join(t.TempDir(), "spool"), "--name", "rack-1", "--metrics-addr", metricsAddr, "--log-format", "json"},
			envOf(map[string]string{"NEOCLOUD_TOKEN": key.Secret}), strings.NewReader(""), io.Discard, agentOut)
	}()
	agentMetric := func(name string) int64 {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return int64(v)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not in 90 s\nagent:\n%s", what, agentOut)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("first pushes", func() bool { return agentMetric("neocloud_agent_batches_pushed_total") >= 3 })

	stop() // the outage: the agent keeps scraping into its spool
	spooled := agentMetric("neocloud_agent_batches_spooled_total")
	waitFor("scrapes during the outage", func() bool { return agentMetric("neocloud_agent_batches_spooled_total") >= spooled+5 })
	if errs := agentMetric("neocloud_agent_push_errors_total"); errs < 1 {
		t.Errorf("push errors during the outage = %d, want some", errs)
	}
	stop = serveOn(t, addr, data) // the restart, on the same database
	defer func() { stop() }()
	waitFor("scrapes after the restart", func() bool { return agentMetric("neocloud_agent_batches_spooled_total") >= spooled+8 })
	frozen.Store(true)
	time.Sleep(400 * time.Millisecond) // a scrape in flight finishes
	waitFor("the spool drained", func() bool { return agentMetric("neocloud_agent_spool_batches") == 0 })

	read := agentMetric("neocloud_agent_readings_total")
	from := time.Now().UTC().Add(-time.Hour).Truncate(time.Hour)
	var u api.Usage
	if err := json.Unmarshal([]byte(admin("usage", "--step", "day", "--from", from.Format(time.RFC3339),
		"--to", from.Add(48*time.Hour).Format(time.RFC3339), "-o", "json")), &u); err != nil {
		t.Fatal(err)
	}
	var got, energy int64
	for _, it := range u.Items {
		got += it.Readings
		energy += it.EnergyMJ
	}
	if got != read || read < 16*8 {
		t.Errorf("the server counted %d readings, the agent read %d: lost or counted twice", got, read)
	}
	// Each GPU's counter grows 7 J per scrape: the energy is 7 J for every
	// step between two readings of a GPU, and never more.
	if energy <= 0 || energy%7_000_000 != 0 || energy > (k.Load()-1)*16*7_000_000 {
		t.Errorf("energy %d mJ over %d scrapes of 16 GPUs", energy, k.Load())
	}
	cancel()
	if err := <-agentDone; err != nil {
		t.Errorf("agent: %v", err)
	}
}

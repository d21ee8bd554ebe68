package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/meter"
)

// The tests run the agent in a synctest bubble, so that its ticker and
// backoff timers run on virtual time, against HTTP servers on 127.0.0.1
// that live outside the bubble (their goroutines wait on the network,
// which would keep the bubble's clock from moving). The agent's client
// opens one connection per request for the same reason.

const token = "test-token-5f1e"

// start is the virtual time the tests' clocks begin at.
var start = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// bubbleClock tells the bubble's virtual time, moved to start. Make it
// when the bubble starts, and give it to every agent in the bubble, so
// that their readings' times never repeat.
type bubbleClock struct{ zero time.Time }

func newBubbleClock() bubbleClock    { return bubbleClock{zero: time.Now()} }
func (c bubbleClock) Now() time.Time { return start.Add(time.Since(c.zero)).UTC() }

// exporter serves a DCGM testdata scrape, or a status when fail says so.
func exporterServer(t *testing.T, file string) *httptest.Server {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "meter", "dcgm", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(data)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// push is one POST the fake server got.
type push struct {
	id     string
	body   []byte
	status int
}

// fakeServer is the Neocloud server's telemetry endpoint: it decodes each
// batch and answers as its script says.
type fakeServer struct {
	t  *testing.T
	ts *httptest.Server

	mu     sync.Mutex
	pushes []push
	// answer says how to answer the n-th push (from 0) of a batch; nil
	// answers 200.
	answer func(n int, b meter.Batch) (status int, header map[string]string, body string)
}

func newFakeServer(t *testing.T) *fakeServer {
	s := &fakeServer{t: t}
	s.ts = httptest.NewUnstartedServer(s)
	return s
}

// startServer starts s on 127.0.0.1 (a free port, or addr).
func (s *fakeServer) start(addr string) {
	if addr != "" {
		_ = s.ts.Listener.Close()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.t.Errorf("listen %s: %v", addr, err)
			return
		}
		s.ts.Listener = ln
	}
	s.ts.Start()
	s.t.Cleanup(s.ts.Close)
}

func (s *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/telemetry" {
		s.t.Errorf("%s %s, want POST /v1/telemetry", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	if got := r.Header.Get("Content-Type"); got != meter.CSVContentType {
		s.t.Errorf("Content-Type %q, want %q", got, meter.CSVContentType)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+token {
		s.t.Errorf("Authorization %q, want the bearer token", got)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.t.Errorf("read body: %v", err)
		return
	}
	b, err := meter.DecodeCSV(body, nil)
	if err == nil {
		err = b.Validate()
	}
	if err != nil {
		s.t.Errorf("the agent sent a batch the server cannot take: %v\n%s", err, body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	n := 0
	for _, p := range s.pushes {
		if p.id == b.ID {
			n++
		}
	}
	status, header, answer := http.StatusOK, map[string]string(nil), ""
	if s.answer != nil {
		status, header, answer = s.answer(n, b)
	}
	s.pushes = append(s.pushes, push{id: b.ID, body: body, status: status})
	s.mu.Unlock()
	for k, v := range header {
		w.Header().Set(k, v)
	}
	if answer == "" && status == http.StatusOK {
		answer = fmt.Sprintf(`{"batch_id":%q,"accepted":%d,"duplicates":0,"too_late":0}`, b.ID, len(b.Readings))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

// delivered returns the batches the server took (2xx), in the order of
// their first delivery, and checks that every push of a batch carried the
// same bytes.
func (s *fakeServer) delivered() []meter.Batch {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	first := map[string][]byte{}
	var out []meter.Batch
	for _, p := range s.pushes {
		if prev, ok := first[p.id]; ok && !bytes.Equal(prev, p.body) {
			s.t.Errorf("batch %s was pushed twice with different content:\n%s\n---\n%s", p.id, prev, p.body)
		}
		if _, ok := first[p.id]; !ok {
			first[p.id] = p.body
		}
		if p.status/100 != 2 || slices.ContainsFunc(out, func(b meter.Batch) bool { return b.ID == p.id }) {
			continue
		}
		b, err := meter.DecodeCSV(p.body, nil)
		if err != nil {
			s.t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func (s *fakeServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pushes)
}

// logBuffer collects an agent's logs, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testAgent is an agent running in the bubble.
type testAgent struct {
	*Agent
	logs   *logBuffer
	stop   context.CancelFunc
	done   chan error
	client *http.Client
}

// runAgent starts an agent in the calling bubble with cfg's blanks filled
// in: the token, a name, a client with one connection per request, a log
// buffer, a bubble clock.
func runAgent(t *testing.T, cfg Config) *testAgent {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	client := &http.Client{Transport: tr}
	logs := &logBuffer{}
	cfg.Token = token
	if cfg.Name == "" {
		cfg.Name = "agent-1"
	}
	cfg.HTTPClient = client
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Clock == nil {
		cfg.Clock = newBubbleClock()
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testAgent{Agent: a, logs: logs, stop: cancel, done: make(chan error, 1), client: client}
	go func() { ta.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent %s logs:\n%s", a.BootID(), logs)
		}
	})
	return ta
}

// shutdown stops the agent and checks that Run returned nil.
func (ta *testAgent) shutdown(t *testing.T) {
	t.Helper()
	ta.stop()
	if err := <-ta.done; err != nil {
		t.Errorf("Run = %v after its context ended, want nil", err)
	}
	ta.client.CloseIdleConnections()
}

// identity is a reading's identity: the server counts it once.
type identity struct {
	node string
	gpu  int
	ms   int64
}

func identities(bs []meter.Batch) map[identity]int {
	m := map[identity]int{}
	for _, b := range bs {
		for _, r := range b.Readings {
			m[identity{r.Node, r.GPU, r.Time.UnixMilli()}]++
		}
	}
	return m
}

// seqOf returns the sequence number at the end of a batch ID, and its
// boot ID.
func seqOf(t *testing.T, id string) (boot string, seq int) {
	t.Helper()
	parts := strings.Split(id, ":")
	if len(parts) != 3 {
		t.Fatalf("batch ID %q: want NAME:BOOT:SEQ", id)
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		t.Fatalf("batch ID %q: %v", id, err)
	}
	return parts[1], n
}

func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+spoolExt))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestRun: every reading read is delivered exactly once, in order; a
// failing exporter is counted and does not stop the others.
func TestRun(t *testing.T) {
	h100 := exporterServer(t, "h100-sxm-8gpu.prom")
	gb200 := exporterServer(t, "gb200-nvl72-tray.prom")
	srv := newFakeServer(t)
	srv.answer = func(n int, b meter.Batch) (int, map[string]string, string) {
		if strings.HasSuffix(b.ID, ":3") {
			return 200, nil, fmt.Sprintf(`{"batch_id":%q,"accepted":10,"duplicates":0,"too_late":2}`, b.ID)
		}
		return 200, nil, ""
	}
	srv.start("")
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		a := runAgent(t, Config{
			Server:    srv.ts.URL,
			Scrape:    []string{h100.URL + "/metrics", gb200.URL + "/metrics", h100.URL + "/missing"},
			BufferDir: dir,
		})
		time.Sleep(95 * time.Second) // reads at 0, 10, ..., 90 s
		synctest.Wait()
		a.shutdown(t)

		got := srv.delivered()
		if len(got) != 10 {
			t.Fatalf("%d batches delivered, want 10 (one per read)", len(got))
		}
		ids := identities(got)
		for id, n := range ids {
			if n != 1 {
				t.Errorf("reading %v delivered %d times", id, n)
			}
		}
		for i, b := range got {
			boot, seq := seqOf(t, b.ID)
			if boot != a.BootID() || seq != i+1 || b.Agent != "agent-1" {
				t.Errorf("batch %d: ID %q agent %q, want agent-1:%s:%d", i, b.ID, b.Agent, a.BootID(), i+1)
			}
			if len(b.Readings) != 12 {
				t.Errorf("batch %s: %d readings, want 12 (8 H100 + 4 GB200)", b.ID, len(b.Readings))
			}
			want := start.Add(time.Duration(i) * 10 * time.Second)
			for _, r := range b.Readings {
				if !r.Time.Equal(want) {
					t.Errorf("batch %s: reading at %s, want %s", b.ID, r.Time, want)
					break
				}
			}
		}
		st := a.Stats()
		want := Stats{Scrapes: 30, ScrapeErrors: 10, Readings: 120, BatchesSpooled: 10, BatchesPushed: 10,
			ReadingsAccepted: 9*12 + 10, ReadingsTooLate: 2}
		if diff := cmp.Diff(want, st); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
		if len(ids) != int(st.Readings) {
			t.Errorf("server has %d readings, agent read %d", len(ids), st.Readings)
		}
		if files := spoolFiles(t, dir); len(files) != 0 {
			t.Errorf("spool still holds %v", files)
		}
		logs := a.logs.String()
		for _, s := range []string{"too_late=2", "404 Not Found", "batch pushed"} {
			if !strings.Contains(logs, s) {
				t.Errorf("logs do not say %q", s)
			}
		}
		if strings.Contains(logs, token) {
			t.Error("the token is in the logs")
		}

		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		for _, s := range []string{
			"neocloud_agent_batches_pushed_total 10",
			"neocloud_agent_readings_total 120",
			`neocloud_agent_scrape_errors_total{source="` + h100.URL + `/missing"} 10`,
			`neocloud_agent_scrapes_total{source="` + gb200.URL + `/metrics"} 10`,
			"neocloud_agent_spool_batches 0",
			"neocloud_agent_batches_dropped_total 0",
		} {
			if !strings.Contains(rec.Body.String(), s) {
				t.Errorf("/metrics lacks %q", s)
			}
		}
	})
}

// checkAllOnce checks that the server has every reading of got exactly
// once and that the batches were first delivered in spool order: by boot,
// then by sequence number.
func checkAllOnce(t *testing.T, got []meter.Batch, boots ...string) {
	t.Helper()
	for id, n := range identities(got) {
		if n != 1 {
			t.Errorf("reading %v delivered %d times", id, n)
		}
	}
	var last struct{ boot, seq int }
	for _, b := range got {
		boot, seq := seqOf(t, b.ID)
		bi := slices.Index(boots, boot)
		if bi < 0 {
			t.Errorf("batch %s from an unknown boot", b.ID)
			continue
		}
		if bi < last.boot || (bi == last.boot && seq <= last.seq) {
			t.Errorf("batch %s delivered out of order", b.ID)
		}
		last.boot, last.seq = bi, seq
	}
}

// TestOutage: while the server answers 503, or refuses connections, the
// agent keeps its batches and retries them in order; once the server is
// back every reading is delivered, every push of a batch carries the same
// bytes, and Retry-After is honoured.
func TestOutage(t *testing.T) {
	h100 := exporterServer(t, "h100-sxm-8gpu.prom")

	t.Run("503 then recovery", func(t *testing.T) {
		srv := newFakeServer(t)
		var mu sync.Mutex
		down, downPushes := true, 0
		srv.answer = func(n int, b meter.Batch) (int, map[string]string, string) {
			mu.Lock()
			defer mu.Unlock()
			if down {
				downPushes++
				return http.StatusServiceUnavailable, map[string]string{"Retry-After": "30"},
					`{"title":"Service Unavailable","status":503,"detail":"the engine is starting"}`
			}
			return 200, nil, ""
		}
		srv.start("")
		synctest.Test(t, func(t *testing.T) {
			a := runAgent(t, Config{Server: srv.ts.URL, Scrape: []string{h100.URL + "/metrics"}, BufferDir: t.TempDir()})
			time.Sleep(125 * time.Second) // reads at 0..120 s: 13 batches
			mu.Lock()
			down = false
			pushes := downPushes
			mu.Unlock()
			// Retry-After: 30 allows a push at 0, 30, 60, 90, 120 s; the
			// backoff alone would have tried about 9 times.
			if pushes < 2 || pushes > 5 {
				t.Errorf("%d pushes in 125 s of 503s with Retry-After: 30, want 2-5", pushes)
			}
			if st := a.Stats(); st.SpoolBatches != 13 || st.BatchesPushed != 0 || st.PushErrors != int64(pushes) {
				t.Errorf("during the outage: %+v", st)
			}
			time.Sleep(60 * time.Second) // the next retry comes within 30 s; 6 reads more
			synctest.Wait()
			a.shutdown(t)

			got := srv.delivered()
			if len(got) != 19 {
				t.Errorf("%d batches delivered, want 19", len(got))
			}
			checkAllOnce(t, got, a.BootID())
			if st := a.Stats(); st.Readings != 19*8 || st.SpoolBatches != 0 || st.BatchesDropped != 0 {
				t.Errorf("after the outage: %+v", st)
			}
			if logs := a.logs.String(); !strings.Contains(logs, "the engine is starting") {
				t.Error("the logs do not give the server's message")
			}
		})
	})

	t.Run("401 until the key is fixed", func(t *testing.T) {
		srv := newFakeServer(t)
		var mu sync.Mutex
		wrongKey := true
		srv.answer = func(int, meter.Batch) (int, map[string]string, string) {
			mu.Lock()
			defer mu.Unlock()
			if wrongKey {
				return http.StatusUnauthorized, nil, `{"title":"Unauthorized","status":401,"detail":"unknown API key"}`
			}
			return 200, nil, ""
		}
		srv.start("")
		dir := t.TempDir()
		synctest.Test(t, func(t *testing.T) {
			a := runAgent(t, Config{Server: srv.ts.URL, Scrape: []string{h100.URL + "/metrics"}, BufferDir: dir})
			time.Sleep(35 * time.Second) // 4 reads
			mu.Lock()
			wrongKey = false
			mu.Unlock()
			time.Sleep(60 * time.Second) // 6 reads more
			synctest.Wait()
			a.shutdown(t)
			got := srv.delivered()
			if len(got) != 10 {
				t.Errorf("%d batches delivered, want 10", len(got))
			}
			checkAllOnce(t, got, a.BootID())
			if files := spoolFiles(t, filepath.Join(dir, rejectedDir)); len(files) != 0 {
				t.Errorf("rejected/ holds %v: a wrong key is not the batch's fault", files)
			}
			if logs := a.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "unknown API key") {
				t.Error("the logs do not give the refusal as an error with the server's message")
			}
		})
	})

	t.Run("connection refused then recovery", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there: connections are refused
		srv := newFakeServer(t)
		// The server starts outside the bubble, when the test says so.
		up, started := make(chan struct{}), make(chan struct{})
		go func() {
			<-up
			srv.start(addr)
			close(started)
		}()
		synctest.Test(t, func(t *testing.T) {
			a := runAgent(t, Config{Server: "http://" + addr, Scrape: []string{h100.URL + "/metrics"}, BufferDir: t.TempDir()})
			time.Sleep(65 * time.Second) // 7 reads
			if st := a.Stats(); st.PushErrors < 5 || st.SpoolBatches != 7 {
				t.Errorf("during the outage: %+v, want at least 5 push errors (backoff 0.5 s, 1 s, 2 s...) and 7 batches kept", st)
			}
			close(up)
			<-started
			time.Sleep(90 * time.Second) // the backoff is at most 1 min; 9 reads more
			synctest.Wait()
			a.shutdown(t)

			got := srv.delivered()
			if len(got) != 16 {
				t.Errorf("%d batches delivered, want 16", len(got))
			}
			checkAllOnce(t, got, a.BootID())
			if logs := a.logs.String(); !strings.Contains(logs, "connection refused") {
				t.Error("the logs do not say the connection was refused")
			}
		})
	})
}

// TestRestart: batches a stopped agent left in its spool are delivered by
// the next agent on the same directory, with their IDs, before its own.
func TestRestart(t *testing.T) {
	h100 := exporterServer(t, "h100-sxm-8gpu.prom")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	srv := newFakeServer(t)
	srv.start("")
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		clk := newBubbleClock()
		first := runAgent(t, Config{Server: refused, Scrape: []string{h100.URL + "/metrics"}, BufferDir: dir, Clock: clk})
		time.Sleep(55 * time.Second) // 6 reads, none delivered
		first.shutdown(t)
		if files := spoolFiles(t, dir); len(files) != 6 {
			t.Fatalf("the first agent left %d batches, want 6", len(files))
		}

		second := runAgent(t, Config{Server: srv.ts.URL, Scrape: []string{h100.URL + "/metrics"}, BufferDir: dir, Clock: clk})
		time.Sleep(25 * time.Second) // 3 reads
		synctest.Wait()
		second.shutdown(t)

		if first.BootID() == second.BootID() {
			t.Fatal("two runs had the same boot ID")
		}
		got := srv.delivered()
		var ids []string
		for _, b := range got {
			ids = append(ids, b.ID)
		}
		var want []string
		for i := 1; i <= 6; i++ {
			want = append(want, fmt.Sprintf("agent-1:%s:%d", first.BootID(), i))
		}
		for i := 1; i <= 3; i++ {
			want = append(want, fmt.Sprintf("agent-1:%s:%d", second.BootID(), i))
		}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("batch IDs delivered (-want +got):\n%s", diff)
		}
		checkAllOnce(t, got, first.BootID(), second.BootID())
		if files := spoolFiles(t, dir); len(files) != 0 {
			t.Errorf("spool still holds %v", files)
		}
	})
}

// batchSize returns the size of an H100 node's batch in the wire format,
// with a two-digit sequence number.
func batchSize(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "meter", "dcgm", "testdata", "h100-sxm-8gpu.golden.csv"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := meter.DecodeCSV(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.ID, b.Agent = "agent-1:0123456789abcdef:10", "agent-1"
	var buf bytes.Buffer
	if err := meter.EncodeCSV(&buf, b); err != nil {
		t.Fatal(err)
	}
	return int64(buf.Len())
}

// TestOverflow: past BufferMax the oldest batches are dropped, counted and
// logged; the newest are delivered once the server is back.
func TestOverflow(t *testing.T) {
	h100 := exporterServer(t, "h100-sxm-8gpu.prom")
	srv := newFakeServer(t)
	var mu sync.Mutex
	down := true
	srv.answer = func(int, meter.Batch) (int, map[string]string, string) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusBadGateway, nil, "upstream down"
		}
		return 200, nil, ""
	}
	srv.start("")
	size := batchSize(t)
	max := 5*size + size/2 // room for 5 batches
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		a := runAgent(t, Config{Server: srv.ts.URL, Scrape: []string{h100.URL + "/metrics"}, BufferDir: dir, BufferMax: max})
		time.Sleep(205 * time.Second) // 21 reads
		st := a.Stats()
		if st.SpoolBatches != 5 || st.BatchesDropped != 16 || st.SpoolBytes > max {
			t.Errorf("after 21 reads into a 5-batch spool: %d batches (%d bytes, bound %d), %d dropped; want 5, 16 dropped",
				st.SpoolBatches, st.SpoolBytes, max, st.BatchesDropped)
		}
		var onDisk int64
		for _, f := range spoolFiles(t, dir) {
			info, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			onDisk += info.Size()
		}
		if onDisk != st.SpoolBytes {
			t.Errorf("spool files hold %d bytes, the agent counts %d", onDisk, st.SpoolBytes)
		}
		mu.Lock()
		down = false
		mu.Unlock()
		time.Sleep(60 * time.Second) // 6 reads more
		synctest.Wait()
		a.shutdown(t)

		// Until its next retry (the backoff is up to 1 min) the agent still
		// drops the oldest batch at each read; then the spool drains.
		got := srv.delivered()
		st = a.Stats()
		var seqs, want []int
		for _, b := range got {
			_, seq := seqOf(t, b.ID)
			seqs = append(seqs, seq)
		}
		for seq := st.BatchesDropped + 1; seq <= 27; seq++ {
			want = append(want, int(seq))
		}
		if diff := cmp.Diff(want, seqs); diff != "" {
			t.Errorf("sequence numbers delivered (-want +got), want all but the %d dropped:\n%s", st.BatchesDropped, diff)
		}
		checkAllOnce(t, got, a.BootID())
		if st.BatchesDropped < 16 || st.BatchesDropped > 22 || st.BatchesSpooled != 27 || st.SpoolBatches != 0 {
			t.Errorf("stats: %+v", st)
		}
		logs := a.logs.String()
		if !strings.Contains(logs, "spool overflow") || !strings.Contains(logs, fmt.Sprintf("dropped_total=%d", st.BatchesDropped)) {
			t.Errorf("the logs do not report the overflow with its count")
		}
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if m := fmt.Sprintf("neocloud_agent_batches_dropped_total %d", st.BatchesDropped); !strings.Contains(rec.Body.String(), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	})
}

// TestRejected: a batch the server refuses with a 4xx goes to rejected/
// at once, and the batches after it are delivered; rejected/ is bounded.
func TestRejected(t *testing.T) {
	h100 := exporterServer(t, "h100-sxm-8gpu.prom")
	const problem = `{"title":"Bad Request","status":400,"detail":"invalid telemetry batch",` +
		`"errors":[{"message":"must be within 0..100","location":"body.readings[3].util_pct","value":101}]}`

	t.Run("one refused", func(t *testing.T) {
		srv := newFakeServer(t)
		srv.answer = func(_ int, b meter.Batch) (int, map[string]string, string) {
			if strings.HasSuffix(b.ID, ":2") {
				return http.StatusBadRequest, map[string]string{"Content-Type": "application/problem+json"}, problem
			}
			return 200, nil, ""
		}
		srv.start("")
		dir := t.TempDir()
		synctest.Test(t, func(t *testing.T) {
			a := runAgent(t, Config{Server: srv.ts.URL, Scrape: []string{h100.URL + "/metrics"}, BufferDir: dir})
			time.Sleep(45 * time.Second) // 5 reads
			synctest.Wait()
			a.shutdown(t)

			got := srv.delivered()
			var seqs []int
			for _, b := range got {
				_, seq := seqOf(t, b.ID)
				seqs = append(seqs, seq)
			}
			if diff := cmp.Diff([]int{1, 3, 4, 5}, seqs); diff != "" {
				t.Errorf("sequence numbers delivered (-want +got):\n%s", diff)
			}
			if n := srv.count(); n != 5 {
				t.Errorf("%d pushes, want 5: a refused batch is not retried", n)
			}
			rejected := spoolFiles(t, filepath.Join(dir, rejectedDir))
			if len(rejected) != 1 {
				t.Fatalf("rejected/ holds %v, want one batch", rejected)
			}
			data, err := os.ReadFile(rejected[0])
			if err != nil {
				t.Fatal(err)
			}
			if id := batchID(data); id != "agent-1:"+a.BootID()+":2" {
				t.Errorf("rejected/ holds batch %s, want batch 2", id)
			}
			if st := a.Stats(); st.BatchesRejected != 1 || st.BatchesPushed != 4 || st.PushErrors != 0 {
				t.Errorf("stats: %+v", st)
			}
			logs := a.logs.String()
			for _, s := range []string{"level=ERROR", "server refused batch", "status=400",
				"invalid telemetry batch; body.readings[3].util_pct: must be within 0..100 (got 101)"} {
				if !strings.Contains(logs, s) {
					t.Errorf("logs do not say %q", s)
				}
			}
		})
	})

	t.Run("rejected/ is bounded", func(t *testing.T) {
		srv := newFakeServer(t)
		srv.answer = func(int, meter.Batch) (int, map[string]string, string) {
			return http.StatusUnprocessableEntity, nil, problem
		}
		srv.start("")
		dir := t.TempDir()
		size := batchSize(t)
		synctest.Test(t, func(t *testing.T) {
			a := runAgent(t, Config{Server: srv.ts.URL, Scrape: []string{h100.URL + "/metrics"}, BufferDir: dir,
				RejectedMax: 2*size + size/2})
			time.Sleep(45 * time.Second)
			synctest.Wait()
			a.shutdown(t)
			rejected := spoolFiles(t, filepath.Join(dir, rejectedDir))
			var ids []string
			for _, f := range rejected {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, batchID(data))
			}
			want := []string{"agent-1:" + a.BootID() + ":4", "agent-1:" + a.BootID() + ":5"}
			if diff := cmp.Diff(want, ids); diff != "" {
				t.Errorf("rejected/ holds (-want +got):\n%s", diff)
			}
			if st := a.Stats(); st.BatchesRejected != 5 {
				t.Errorf("%d batches rejected, want 5", st.BatchesRejected)
			}
		})
	})
}

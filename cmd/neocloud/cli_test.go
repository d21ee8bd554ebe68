package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/client"
	"github.com/neocloud/neocloud/internal/fleet"
	"github.com/neocloud/neocloud/internal/store/dbtest"
	"github.com/neocloud/neocloud/internal/store/postgres"
)

// End-to-end tests of the command line: each starts `neocloud serve`
// in-process through run, on 127.0.0.1 and a free port, and drives it with
// the client commands, also through run.

// syncBuffer is a bytes.Buffer safe for concurrent use. Each write signals
// changed, so a reader can wait for output without sleeping.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.buf.Write(p)
	b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// envOf returns a getenv that sees only vars: tests never read the
// process environment, so NEOCLOUD_SERVER or NEOCLOUD_TOKEN set by whoever
// runs them cannot leak in.
func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// neocloud runs the command line args in-process with an empty environment
// and returns what it printed.
func neocloud(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return neocloudEnv(t, nil, args...)
}

func neocloudEnv(t *testing.T, vars map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(t.Context(), args, envOf(vars), strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

// testServer is a `neocloud serve` running in this process.
type testServer struct {
	url          string
	data         string
	adminKeyPath string
	adminKey     string
	stdout       *syncBuffer
	stderr       *syncBuffer
	// secrets the server must never print or log; the admin key's is also
	// never printed by a client command.
	secrets []string
}

// backend is a store the server runs on: db is the --db flag ("" for the
// default SQLite file in --data).
type backend struct {
	name string
	db   func(t *testing.T) string
}

func backends() []backend {
	return []backend{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return postgres.TestSchema(t, dbtest.PostgresDSN(t)) }},
	}
}

// eachBackend runs fn as parallel subtests, one per backend. PostgreSQL runs
// when NEOCLOUD_TEST_POSTGRES is set (scripts/pg sets it) and is skipped
// otherwise, unless NEOCLOUD_REQUIRE_POSTGRES=1.
func eachBackend(t *testing.T, fn func(t *testing.T, db string)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.db(t))
		})
	}
}

// startServer runs serve on 127.0.0.1 with a free port and a fresh data
// directory, waits until it answers /healthz, and stops it when the test
// ends, checking that it shut down cleanly. flags are more serve flags.
func startServer(t *testing.T, db string, flags ...string) *testServer {
	t.Helper()
	s := &testServer{data: t.TempDir(), stdout: newSyncBuffer(), stderr: newSyncBuffer()}
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data", s.data, "--log-format", "json"}, flags...)
	if db != "" {
		args = append(args, "--db", db)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		runErr = run(ctx, args, envOf(nil), strings.NewReader(""), s.stdout, s.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
			if runErr != nil {
				t.Errorf("serve returned %v after its context ended, want nil (graceful shutdown)", runErr)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve still running 30s after its context ended")
			return
		}
		out := s.stdout.String() + s.stderr.String()
		for i, secret := range s.secrets {
			if strings.Contains(out, secret) {
				t.Errorf("serve printed or logged secret %d of %d (0 is the admin key)", i, len(s.secrets))
			}
		}
		if t.Failed() {
			t.Logf("serve stdout:\n%s\nserve stderr:\n%s", s.stdout, s.stderr)
		}
	})

	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	s.url = waitListening(t, s, exited, func() error { return runErr }, deadline.C)
	waitHealthy(t, s.url, exited, deadline.C)

	s.adminKeyPath = filepath.Join(s.data, "admin.key")
	b, err := os.ReadFile(s.adminKeyPath)
	if err != nil {
		t.Fatalf("bootstrap admin key: %v\nstdout:\n%s", err, s.stdout)
	}
	s.adminKey = strings.TrimSpace(string(b))
	if s.adminKey == "" {
		t.Fatalf("bootstrap admin key file %s is empty", s.adminKeyPath)
	}
	s.secrets = append(s.secrets, s.adminKey)
	return s
}

// waitListening waits for serve to print the URL it listens on.
func waitListening(t *testing.T, s *testServer, exited <-chan struct{}, runErr func() error, deadline <-chan time.Time) string {
	t.Helper()
	for {
		if u, ok := listeningURL(s.stdout.String()); ok {
			return u
		}
		select {
		case <-s.stdout.changed:
		case <-exited:
			if u, ok := listeningURL(s.stdout.String()); ok {
				return u
			}
			t.Fatalf("serve exited before listening: %v\nstderr:\n%s", runErr(), s.stderr)
		case <-deadline:
			t.Fatalf("serve printed no \"listening on\" line in time\nstdout:\n%s\nstderr:\n%s", s.stdout, s.stderr)
		}
	}
}

// listeningURL finds the "listening on URL" line serve prints once bound,
// and checks the URL is on the loopback address the tests asked for.
func listeningURL(out string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "listening on ")
		if !ok {
			continue
		}
		u, err := url.Parse(strings.TrimSpace(rest))
		if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" {
			continue
		}
		return u.String(), true
	}
	return "", false
}

// waitHealthy polls GET /healthz until it answers 200.
func waitHealthy(t *testing.T, base string, exited <-chan struct{}, deadline <-chan time.Time) {
	t.Helper()
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		resp, err := hc.Get(base + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if !strings.Contains(string(body), `"ok"`) {
					t.Fatalf("GET /healthz = %s, want status ok", body)
				}
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-tick.C:
		case <-exited:
			t.Fatalf("serve exited while waiting for /healthz (last: %s)", last)
		case <-deadline:
			t.Fatalf("GET %s/healthz not 200 in time (last: %s)", base, last)
		}
	}
}

// admin runs a client command as the bootstrap operator admin, configured
// as an operator would: NEOCLOUD_SERVER and NEOCLOUD_TOKEN_FILE.
func (s *testServer) admin(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return s.exec(t, map[string]string{"NEOCLOUD_SERVER": s.url, "NEOCLOUD_TOKEN_FILE": s.adminKeyPath}, args...)
}

// as runs a client command with the --server and --token flags.
func (s *testServer) as(t *testing.T, token string, args ...string) (string, error) {
	t.Helper()
	return s.exec(t, nil, append([]string{"--server", s.url, "--token", token}, args...)...)
}

func (s *testServer) exec(t *testing.T, vars map[string]string, args ...string) (string, error) {
	t.Helper()
	stdout, stderr, err := neocloudEnv(t, vars, args...)
	for _, text := range []string{stdout, stderr, errText(err)} {
		if s.adminKey != "" && strings.Contains(text, s.adminKey) {
			t.Errorf("neocloud %s printed the admin key", strings.Join(args, " "))
		}
	}
	return stdout, err
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// mustJSON runs a command as admin (token "") or with token, with -o json,
// and decodes its output into a T.
func mustJSON[T any](t *testing.T, s *testServer, token string, args ...string) T {
	t.Helper()
	args = append(args, "-o", "json")
	var out string
	var err error
	if token == "" {
		out, err = s.admin(t, args...)
	} else {
		out, err = s.as(t, token, args...)
	}
	if err != nil {
		t.Fatalf("neocloud %s: %v", strings.Join(args, " "), err)
	}
	return decode[T](t, out)
}

func decode[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, out)
	}
	return v
}

// wantProblem checks that err is a problem answer with status whose text
// holds each of wants.
func wantProblem(t *testing.T, err error, status int, wants ...string) {
	t.Helper()
	var pe *client.ProblemError
	if !errors.As(err, &pe) {
		t.Fatalf("error = %v (%T), want a %d problem", err, err, status)
	}
	if pe.Status != status {
		t.Errorf("status = %d, want %d (%v)", pe.Status, status, err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// step runs fn as a subtest and stops the test when it fails: later steps
// build on earlier ones.
func step(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, fn) {
		t.FailNow()
	}
}

func TestServeScenario(t *testing.T) {
	t.Parallel()
	eachBackend(t, testScenario)
}

func testScenario(t *testing.T, db string) {
	s := startServer(t, db)
	file := filepath.Join(t.TempDir(), "small-lab.yaml")

	step(t, "admin key file", func(t *testing.T) {
		fi, err := os.Stat(s.adminKeyPath)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s mode = %v, want 0600", s.adminKeyPath, mode)
		}
		if !strings.HasPrefix(s.adminKey, "nc_") {
			t.Errorf("admin key does not look like an API key (want prefix nc_)")
		}
		if want := "operator-admin key written to " + s.adminKeyPath; !strings.Contains(s.stdout.String(), want) {
			t.Errorf("serve stdout lacks %q:\n%s", want, s.stdout)
		}
		// The log is JSON lines (--log-format json).
		sc := bufio.NewScanner(strings.NewReader(s.stderr.String()))
		for sc.Scan() {
			if !json.Valid(sc.Bytes()) {
				t.Errorf("serve stderr line is not JSON: %s", sc.Text())
			}
		}
		// Secrets in the output are checked after every command and at the end.
	})

	var sum FleetSummary
	var wantNodes int
	var wantGPUs int64
	step(t, "fleet generate and validate", func(t *testing.T) {
		if _, err := s.admin(t, "fleet", "generate", "--preset", "small-lab", "--seed", "0", "-f", file); err != nil {
			t.Fatal(err)
		}
		out, err := s.admin(t, "fleet", "validate", "-f", file)
		if err != nil {
			t.Fatal(err)
		}
		sum = mustJSON[FleetSummary](t, s, "", "fleet", "validate", "-f", file)
		if !sum.Valid || len(sum.Pools) == 0 {
			t.Fatalf("validate = %+v, want valid with pools", sum)
		}
		for _, p := range sum.Pools {
			if !strings.Contains(out, p.ID) {
				t.Errorf("validate table lacks pool %s:\n%s", p.ID, out)
			}
			wantNodes += int(p.Nodes)
			wantGPUs += p.GPUs
		}
	})

	step(t, "fleet apply --dry-run", func(t *testing.T) {
		out, err := s.admin(t, "fleet", "apply", "-f", file, "--dry-run")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "(dry run)") {
			t.Errorf("dry run table does not say so:\n%s", out)
		}
		res := mustJSON[api.ApplyResult](t, s, "", "fleet", "apply", "-f", file, "--dry-run")
		if !res.DryRun || res.Added != wantNodes || res.Revision != 0 {
			t.Errorf("dry run = dry_run %v, added %d, revision %d; want true, %d, 0", res.DryRun, res.Added, res.Revision, wantNodes)
		}
		page := mustJSON[api.NodePage](t, s, "", "nodes", "list", "--all")
		if len(page.Items) != 0 {
			t.Errorf("after a dry run %d nodes are in service, want 0", len(page.Items))
		}
	})

	step(t, "fleet apply", func(t *testing.T) {
		res := mustJSON[api.ApplyResult](t, s, "", "fleet", "apply", "-f", file)
		if res.DryRun || res.Added != wantNodes || res.Nodes != wantNodes || res.GPUs != wantGPUs || res.Updated+res.Retired+res.Unchanged != 0 {
			t.Errorf("apply = %+v, want %d added of %d nodes, %d GPUs", res, wantNodes, wantNodes, wantGPUs)
		}
		if res.Revision <= 0 || len(res.SHA256) != 64 {
			t.Errorf("apply revision %d, sha256 %q: want a revision and a digest", res.Revision, res.SHA256)
		}
	})

	step(t, "fleet apply again changes nothing", func(t *testing.T) {
		res := mustJSON[api.ApplyResult](t, s, "", "fleet", "apply", "-f", file)
		if res.Added != 0 || res.Updated != 0 || res.Retired != 0 || res.Unchanged != wantNodes {
			t.Errorf("reapply = %d added, %d updated, %d retired, %d unchanged; want 0, 0, 0, %d",
				res.Added, res.Updated, res.Retired, res.Unchanged, wantNodes)
		}
	})

	step(t, "pools list", func(t *testing.T) {
		type counts struct{ Nodes, GPUs, Available int64 }
		want := map[string]counts{}
		for _, p := range sum.Pools {
			want[p.ID] = counts{p.Nodes, p.GPUs, p.Nodes}
		}
		got := map[string]counts{}
		for _, p := range mustJSON[[]api.Pool](t, s, "", "pools", "list") {
			got[p.ID] = counts{p.Nodes, p.GPUs, p.NodesByState["available"]}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("pools (-validate +server):\n%s", diff)
		}
	})

	var nodeNames []string
	step(t, "nodes list and pagination", func(t *testing.T) {
		all := mustJSON[api.NodePage](t, s, "", "nodes", "list", "--all")
		if len(all.Items) != wantNodes || all.NextCursor != "" {
			t.Fatalf("nodes list --all = %d nodes, next %q; want %d, none", len(all.Items), all.NextCursor, wantNodes)
		}
		for _, n := range all.Items {
			nodeNames = append(nodeNames, n.Name)
		}
		if !slices.IsSorted(nodeNames) || len(slices.Compact(slices.Clone(nodeNames))) != len(nodeNames) {
			t.Errorf("node names are not sorted and unique: %v", nodeNames)
		}
		var paged []string
		for _, n := range mustJSON[api.NodePage](t, s, "", "nodes", "list", "--all", "--limit", "7").Items {
			paged = append(paged, n.Name)
		}
		if diff := cmp.Diff(nodeNames, paged); diff != "" {
			t.Errorf("--all --limit 7 (-one page +pages of 7):\n%s", diff)
		}
		first := mustJSON[api.NodePage](t, s, "", "nodes", "list", "--limit", "7")
		if len(first.Items) != 7 || first.NextCursor != nodeNames[6] {
			t.Fatalf("--limit 7 = %d nodes, next %q; want 7, %q", len(first.Items), first.NextCursor, nodeNames[6])
		}
		second := mustJSON[api.NodePage](t, s, "", "nodes", "list", "--limit", "7", "--cursor", first.NextCursor)
		var got []string
		for _, n := range second.Items {
			got = append(got, n.Name)
		}
		if diff := cmp.Diff(nodeNames[7:14], got); diff != "" {
			t.Errorf("second page (-want +got):\n%s", diff)
		}
		table, err := s.admin(t, "nodes", "list", "--limit", "7")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(table, "--cursor "+nodeNames[6]) {
			t.Errorf("table of one page does not say how to get the next:\n%s", table)
		}
	})

	step(t, "tenants create", func(t *testing.T) {
		got := mustJSON[api.Tenant](t, s, "", "tenants", "create", "acme", "--display-name", "Acme")
		if got.ID != "acme" || got.DisplayName != "Acme" || got.Created.IsZero() {
			t.Errorf("tenants create = %+v, want acme \"Acme\" with its creation time", got)
		}
		if _, err := s.admin(t, "tenants", "create", "other", "--display-name", "Other Lab"); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, tn := range mustJSON[[]api.Tenant](t, s, "", "tenants", "list") {
			ids = append(ids, tn.ID)
		}
		slices.Sort(ids)
		if diff := cmp.Diff([]string{"acme", "other"}, ids); diff != "" {
			t.Errorf("tenants seen by the operator (-want +got):\n%s", diff)
		}
	})

	var key api.KeyCreated
	step(t, "keys create", func(t *testing.T) {
		key = mustJSON[api.KeyCreated](t, s, "", "keys", "create", "--tenant", "acme", "--role", "tenant-admin", "--name", "ci")
		if key.Secret == "" || key.ID == "" || key.Tenant != "acme" || key.Role != "tenant-admin" || key.Revoked != nil {
			t.Fatalf("keys create = %+v, want an unrevoked tenant-admin key of acme with its secret", key)
		}
		if strings.Contains(key.Secret, key.ID) {
			t.Errorf("key secret %q contains its ID", key.Secret)
		}
		s.secrets = append(s.secrets, key.Secret)
		for _, k := range mustJSON[[]api.Key](t, s, "", "keys", "list", "--tenant", "acme") {
			b, _ := json.Marshal(k)
			if strings.Contains(string(b), key.Secret) {
				t.Errorf("keys list shows a secret: %s", b)
			}
		}
	})

	step(t, "tenant key", func(t *testing.T) {
		me := mustJSON[api.Me](t, s, key.Secret, "whoami")
		if me.KeyID != key.ID || me.Tenant != "acme" || me.Role != "tenant-admin" {
			t.Errorf("whoami = %+v, want key %s of acme, tenant-admin", me, key.ID)
		}
		if slices.Contains(me.Permissions, "nodes:read") {
			t.Errorf("tenant-admin has nodes:read: %v", me.Permissions)
		}
		var ids []string
		for _, tn := range mustJSON[[]api.Tenant](t, s, key.Secret, "tenants", "list") {
			ids = append(ids, tn.ID)
		}
		if diff := cmp.Diff([]string{"acme"}, ids); diff != "" {
			t.Errorf("tenants seen by acme's key (-want +got):\n%s", diff)
		}
		_, err := s.as(t, key.Secret, "nodes", "list")
		wantProblem(t, err, http.StatusForbidden, "nodes:read")
		_, err = s.as(t, key.Secret, "tenants", "show", "other")
		wantProblem(t, err, http.StatusNotFound)
		if strings.Contains(errText(err), "Other Lab") {
			t.Errorf("404 for another tenant leaks its display name: %v", err)
		}
		_, err = s.as(t, key.Secret, "fleet", "apply", "-f", file)
		wantProblem(t, err, http.StatusForbidden, "fleet:write")
	})

	step(t, "keys revoke", func(t *testing.T) {
		got := mustJSON[api.Key](t, s, "", "keys", "revoke", key.ID)
		if got.ID != key.ID || got.Revoked == nil {
			t.Errorf("keys revoke = %+v, want %s revoked", got, key.ID)
		}
		_, err := s.as(t, key.Secret, "whoami")
		wantProblem(t, err, http.StatusUnauthorized)
		_, err = s.as(t, key.Secret, "tenants", "list")
		wantProblem(t, err, http.StatusUnauthorized)
	})

	step(t, "audit list", func(t *testing.T) {
		entries := mustJSON[[]api.AuditEntry](t, s, "", "audit", "list", "--limit", "1000")
		ok := map[string]int{}
		var denied []api.AuditEntry
		for _, e := range entries {
			switch e.Outcome {
			case "ok":
				ok[e.Action]++
			case "denied":
				denied = append(denied, e)
			}
		}
		for action, atLeast := range map[string]int{"tenants.create": 2, "keys.create": 2, "keys.revoke": 1, "fleet.apply": 1} {
			if ok[action] < atLeast {
				t.Errorf("audit has %d ok %s entries, want at least %d", ok[action], action, atLeast)
			}
		}
		has := func(what string, match func(api.AuditEntry) bool) {
			t.Helper()
			if !slices.ContainsFunc(denied, match) {
				t.Errorf("audit has no denied entry for %s; denied: %+v", what, denied)
			}
		}
		has("acme's nodes list", func(e api.AuditEntry) bool {
			return e.ActorKey == key.ID && strings.Contains(e.Detail, "nodes:read")
		})
		has("acme's read of tenant other", func(e api.AuditEntry) bool {
			return e.ActorKey == key.ID && strings.Contains(e.Object, "other")
		})
		if len(denied) < 4 {
			t.Errorf("audit has %d denied entries, want at least 4 (403s, 404, 401s)", len(denied))
		}
		b, _ := json.Marshal(entries)
		if strings.Contains(string(b), key.Secret) || strings.Contains(string(b), s.adminKey) {
			t.Errorf("audit log holds a secret")
		}
	})

	step(t, "fleet show", func(t *testing.T) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		want, err := fleet.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.admin(t, "fleet", "show")
		if err != nil {
			t.Fatal(err)
		}
		got, err := fleet.Parse([]byte(out))
		if err != nil {
			t.Fatalf("fleet show output does not parse: %v\n%s", err, out)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("fleet show (-applied +shown):\n%s", diff)
		}
		rev := mustJSON[api.FleetRevision](t, s, "", "fleet", "show")
		if rev.Nodes != int64(wantNodes) || rev.GPUs != wantGPUs || rev.Revision <= 0 {
			t.Errorf("fleet show -o json = revision %d, %d nodes, %d GPUs; want %d nodes, %d GPUs", rev.Revision, rev.Nodes, rev.GPUs, wantNodes, wantGPUs)
		}
		if diff := cmp.Diff(*want, rev.Spec); diff != "" {
			t.Errorf("fleet show -o json spec (-applied +shown):\n%s", diff)
		}
	})
}

// badFleetBase is a valid fleet file that the bad inputs edit: 6 H100
// nodes in row-a and one H200 node, named by hostname, in row-b.
const badFleetBase = `version: 1
sites:
  - name: t1
    facility_mw: 1
    pue: 1.2
    timezone: UTC
    power_domains:
      - {name: row-a, budget_kw: 200}
      - {name: row-b, budget_kw: 200}
    pods:
      - name: p1
        power_domain: row-a
        leaf_groups:
          - name: l{n}
            count: 2
            nodes:
              - {name: "n{n}", count: 3, model: H100-SXM}
      - name: p2
        power_domain: row-b
        leaf_groups:
          - name: l1
            nodes:
              - {hostname: extra-1, model: H200-SXM}
`

func TestBadInput(t *testing.T) {
	t.Parallel()
	eachBackend(t, testBadInput)
}

func testBadInput(t *testing.T, db string) {
	s := startServer(t, db)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.yaml")
	if err := os.WriteFile(base, []byte(badFleetBase), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin(t, "fleet", "apply", "-f", base); err != nil {
		t.Fatalf("apply base fleet: %v", err)
	}
	if _, err := s.admin(t, "tenants", "create", "acme"); err != nil {
		t.Fatal(err)
	}
	// snapshot is what the server holds; no bad input may change it.
	snapshot := func(t *testing.T) string {
		t.Helper()
		var b strings.Builder
		for _, args := range [][]string{
			{"nodes", "list", "--all", "-o", "json"},
			{"sites", "list", "-o", "json"},
			{"tenants", "list", "-o", "json"},
			{"keys", "list", "--include-revoked", "-o", "json"},
			{"fleet", "show", "-o", "json"},
		} {
			out, err := s.admin(t, args...)
			if err != nil {
				t.Fatalf("neocloud %s: %v", strings.Join(args, " "), err)
			}
			b.WriteString(out)
		}
		return b.String()
	}
	before := snapshot(t)
	if n := len(mustJSON[api.NodePage](t, s, "", "nodes", "list", "--all").Items); n != 7 {
		t.Fatalf("base fleet has %d nodes, want 7", n)
	}

	// A case with edit writes the base fleet with edit[0] replaced by
	// edit[1] and runs both fleet validate (offline) and fleet apply on it;
	// otherwise it runs args.
	tests := []struct {
		name string
		edit [2]string
		args []string
		want []string
	}{
		{
			name: "malformed YAML",
			edit: [2]string{"    timezone: UTC\n", "    timezone: UTC: x\n"},
			want: []string{"fleet file", "line 6:"},
		},
		{
			name: "unknown GPU model",
			edit: [2]string{"model: H200-SXM", "model: H900"},
			want: []string{"sites[0].pods[1].leaf_groups[0].nodes[0].model", "unknown GPU model", "H900"},
		},
		{
			name: "unknown power domain",
			edit: [2]string{"power_domain: row-b", "power_domain: row-z"},
			want: []string{"sites[0].pods[1].power_domain", "not a declared power domain", "row-z"},
		},
		{
			name: "duplicate node names",
			edit: [2]string{"hostname: extra-1", "hostname: t1-p1-l1-n1"},
			want: []string{"duplicate node name", "t1-p1-l1-n1"},
		},
		{
			name: "unknown field",
			edit: [2]string{"    pue: 1.2\n", "    pue: 1.2\n    colour: blue\n"},
			want: []string{"line 6:", `unknown field "colour"`},
		},
		{
			name: "wrong type",
			edit: [2]string{"count: 2\n", "count: twelve\n"},
			want: []string{"line 15:", "sites[0].pods[0].leaf_groups[0].count", "want an integer", "twelve"},
		},
		{
			name: "bad tenant slug",
			args: []string{"tenants", "create", "Bad Slug"},
			want: []string{"422", "id", "lowercase", "Bad Slug"},
		},
		{
			name: "unknown role",
			args: []string{"keys", "create", "--tenant", "acme", "--role", "superuser"},
			want: []string{"422", "role", "superuser"},
		},
		{
			name: "no role",
			args: []string{"keys", "create", "--tenant", "acme"},
			want: []string{"role"},
		},
		{
			name: "unknown output format",
			args: []string{"tenants", "list", "-o", "xml"},
			want: []string{"--output", "xml"},
		},
		{
			name: "server not a URL",
			args: []string{"tenants", "create", "new-one", "--server", "notaurl"},
			want: []string{"notaurl", "http"},
		},
		{
			name: "fleet apply without a file",
			args: []string{"fleet", "apply"},
			want: []string{"-f", "required"},
		},
		{
			name: "fleet file missing",
			args: []string{"fleet", "apply", "-f", filepath.Join(dir, "missing.yaml")},
			want: []string{"missing.yaml"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmds := [][]string{tc.args}
			if tc.edit[0] != "" {
				if !strings.Contains(badFleetBase, tc.edit[0]) {
					t.Fatalf("base fleet has no %q to edit", tc.edit[0])
				}
				file := filepath.Join(t.TempDir(), "bad.yaml")
				if err := os.WriteFile(file, []byte(strings.Replace(badFleetBase, tc.edit[0], tc.edit[1], 1)), 0o600); err != nil {
					t.Fatal(err)
				}
				cmds = [][]string{{"fleet", "validate", "-f", file}, {"fleet", "apply", "-f", file}}
			}
			for _, args := range cmds {
				out, err := s.admin(t, args...)
				if err == nil {
					t.Errorf("neocloud %s succeeded, want an error\n%s", strings.Join(args, " "), out)
					continue
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("neocloud %s: error %q does not mention %q", strings.Join(args, " "), err, w)
					}
				}
			}
			if diff := cmp.Diff(before, snapshot(t)); diff != "" {
				t.Errorf("the server changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			out, _, err := neocloud(t, "completion", shell)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) < 100 || !strings.Contains(out, "neocloud") {
				t.Errorf("completion %s printed %d bytes not naming neocloud:\n%.300s", shell, len(out), out)
			}
		})
	}
}

func TestFleetGenerateOffline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		preset    string
		seed      string
		wantNodes int // 0: fewer than the preset's slots (a seed leaves some empty)
		wantGPUs  int64
		slots     int
		capped    bool
	}{
		// 32 H100 and 8 H200 nodes of 8 GPUs, 18 GB200 trays of 4.
		{preset: "small-lab", seed: "0", wantNodes: 58, wantGPUs: 392, slots: 58},
		{preset: "small-lab", seed: "1", slots: 58},
		// ~301 MW of IT load at full power against a 250 MW IT budget.
		{preset: "reference-300mw", seed: "0", wantNodes: 31_488, wantGPUs: 224_256, slots: 31_488, capped: true},
	}
	for _, tc := range tests {
		t.Run(tc.preset+"/seed="+tc.seed, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "fleet.yaml")
			out, _, err := neocloud(t, "fleet", "generate", "--preset", tc.preset, "--seed", tc.seed, "-f", file)
			if err != nil || out != "" {
				t.Fatalf("generate -f = %q, %v; want nothing printed, nil", out, err)
			}
			stdout, _, err := neocloud(t, "fleet", "generate", "--preset", tc.preset, "--seed", tc.seed)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if stdout != string(data) {
				t.Errorf("generate to stdout and to -f differ")
			}
			out, _, err = neocloud(t, "fleet", "validate", "-f", file, "-o", "json")
			if err != nil {
				t.Fatal(err)
			}
			sum := decode[FleetSummary](t, out)
			var nodes int
			var gpus int64
			for _, s := range sum.Sites {
				nodes += s.Nodes
				gpus += s.GPUs
				if s.PowerCapped != tc.capped {
					t.Errorf("site %s power_capped = %v, want %v", s.Name, s.PowerCapped, tc.capped)
				}
			}
			if tc.wantNodes != 0 && (nodes != tc.wantNodes || gpus != tc.wantGPUs) {
				t.Errorf("validate = %d nodes, %d GPUs; want %d, %d", nodes, gpus, tc.wantNodes, tc.wantGPUs)
			}
			if tc.wantNodes == 0 && (nodes == 0 || nodes >= tc.slots) {
				t.Errorf("validate = %d nodes; want some, fewer than the %d slots", nodes, tc.slots)
			}
			var poolNodes int64
			for _, p := range sum.Pools {
				poolNodes += p.Nodes
			}
			if poolNodes != int64(nodes) {
				t.Errorf("pools hold %d nodes, sites %d", poolNodes, nodes)
			}
			// Validate from stdin ("-f -") agrees.
			var so bytes.Buffer
			if err := run(t.Context(), []string{"fleet", "validate", "-f", "-", "-o", "json"}, envOf(nil), bytes.NewReader(data), &so, io.Discard); err != nil {
				t.Fatal(err)
			}
			if so.String() != out {
				t.Errorf("validate -f - differs from validate -f FILE:\n%s\n%s", so.String(), out)
			}
		})
	}
}

func TestBenchFleet(t *testing.T) {
	t.Parallel()
	out, _, err := neocloud(t, "bench", "fleet", "--preset", "small-lab", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	r := decode[FleetBench](t, out)
	if r.Nodes <= 0 || r.GPUs <= 0 || r.Preset != "small-lab" || r.DB != "sqlite" {
		t.Errorf("bench fleet = %+v, want nodes and GPUs of small-lab on sqlite", r)
	}
	if !r.WithinTarget {
		t.Errorf("bench fleet of small-lab not within target: %+v", r)
	}
}

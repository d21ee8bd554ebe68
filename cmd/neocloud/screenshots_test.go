package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neocloud/neocloud/internal/api"
	"github.com/neocloud/neocloud/internal/web/browser/browsertest"
)

// TestScreenshots shoots a real server's dashboard in headless Chromium
// (skipped without it unless NEOCLOUD_REQUIRE_BROWSER=1).
func TestScreenshots(t *testing.T) {
	chromium := browsertest.Require(t)
	s := startServer(t, "")
	file := filepath.Join(t.TempDir(), "small-lab.yaml")
	if _, err := s.admin(t, "fleet", "generate", "--preset", "small-lab", "--seed", "0", "-f", file); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin(t, "fleet", "apply", "-f", file); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin(t, "tenants", "create", "acme"); err != nil {
		t.Fatal(err)
	}
	key := mustJSON[api.KeyCreated](t, s, "", "keys", "create", "--tenant", "acme", "--role", "tenant-viewer", "--name", "shots")
	s.secrets = append(s.secrets, key.Secret)
	keyFile := filepath.Join(t.TempDir(), "acme.key")
	if err := os.WriteFile(keyFile, []byte(key.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().Truncate(time.Hour).Add(2 * time.Hour).Format(time.RFC3339)
	if _, err := s.admin(t, "leases", "create", "--tenant", "acme", "--pool", "lab-1/H100-SXM", "--start", start, "--end", "24h", "--gpus", "8"); err != nil {
		t.Fatal(err)
	}
	shots := func(args ...string) (string, error) {
		t.Helper()
		return s.exec(t, map[string]string{"NEOCLOUD_SERVER": s.url, "NEOCLOUD_TOKEN_FILE": s.adminKeyPath, "NEOCLOUD_CHROMIUM": chromium},
			append([]string{"screenshots"}, args...)...)
	}

	out := filepath.Join(t.TempDir(), "shots")
	stdout, err := shots("--out", out, "--pages", "fleet,capacity,leases,lease,tenant,invoices,/capacity?span=1y", "--width", "1024", "--height", "700",
		"--tenant-token-file", keyFile, "--tenant-pages", "leases")
	if err != nil {
		t.Fatalf("screenshots: %v\n%s", err, stdout)
	}
	var want []string
	for _, name := range []string{"fleet", "capacity", "leases", "lease", "tenant", "invoices", "capacity-span-1y", "tenant-leases"} {
		path := filepath.Join(out, name+".png")
		want = append(want, path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
			continue
		}
		if len(b) < 1000 || !strings.HasPrefix(string(b), "\x89PNG\r\n\x1a\n") {
			t.Errorf("%s: %d bytes, want a PNG", path, len(b))
		}
	}
	if got := strings.Fields(stdout); !slices.Equal(got, want) {
		t.Errorf("printed %q, want the files written %q", got, want)
	}

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"missing page", []string{"--pages", "fleet,nope"}, "/nope: HTTP 404"},
		{"wrong key", []string{"--token", "nc_wrong", "--pages", "fleet"}, "sign-in refused"},
		{"no item", []string{"--pages", "invoice"}, "/invoices links to no invoice page"},
		{"bad name", []string{"--pages", "../x"}, "want a page name"},
	} {
		if _, err := shots(append([]string{"--out", t.TempDir()}, tt.args...)...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}

// Package browsertest starts the headless Chromium of the browser tests.
package browsertest

import (
	"context"
	"os"
	"testing"

	"github.com/neocloud/neocloud/internal/web/browser"
)

// Start returns a headless Chromium that stops when the test ends. Without
// Chromium (see browser.Find; NEOCLOUD_CHROMIUM names one) the test is
// skipped, unless NEOCLOUD_REQUIRE_BROWSER=1 (scripts/test sets it), when
// it fails.
func Start(t testing.TB) *browser.Browser {
	t.Helper()
	b, err := browser.Start(context.Background(), browser.Options{ExecPath: Require(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// Require returns the path of Chromium (see browser.Find), or skips the
// test without it, unless NEOCLOUD_REQUIRE_BROWSER=1, when it fails.
func Require(t testing.TB) string {
	t.Helper()
	path, err := browser.Find(os.Getenv("NEOCLOUD_CHROMIUM"))
	if err != nil {
		if os.Getenv("NEOCLOUD_REQUIRE_BROWSER") == "1" {
			t.Fatalf("%v (NEOCLOUD_REQUIRE_BROWSER=1)", err)
		}
		t.Skipf("%v; browser tests skipped", err)
	}
	return path
}

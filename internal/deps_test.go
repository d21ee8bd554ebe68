package internal_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/neocloud/neocloud/internal/"

// forbidden maps a package folder (under internal/) to import path prefixes
// it must not import: domain packages stay free of I/O adapters, and
// dependencies point inward (cmd -> api/store -> engine -> domain).
func forbiddenImports() map[string][]string {
	forbidden := map[string][]string{}
	io := []string{"net/http", "database/sql", "github.com/jackc/", "modernc.org/", "k8s.io/", "github.com/danielgtaylor/",
		module + "api", module + "store", module + "engine", module + "client"}
	for _, domain := range []string{"unit", "valid", "clock", "fleet", "tenant", "lease", "workload", "calendar", "placement", "money", "spot", "forecast", "demand", "handover", "sim", "event", "meter", "billing"} {
		forbidden[domain] = io
	}
	// The egress policy (which addresses webhooks may reach) is pure:
	// addresses in, verdicts out; the webhook client dials with it.
	forbidden["egress"] = io
	forbidden["engine"] = []string{"net/http", "database/sql", "github.com/jackc/", "modernc.org/", module + "api", module + "store", module + "client"}
	forbidden["api"] = []string{module + "store", "database/sql"}
	// The webhook sender is an adapter (it speaks HTTP) that the engine
	// feeds through a small interface: it knows no store, engine or API.
	forbidden["webhook"] = []string{"database/sql", "github.com/jackc/", "modernc.org/", "k8s.io/", "github.com/danielgtaylor/",
		module + "api", module + "store", module + "engine", module + "client"}
	// The DCGM parser is pure: text in, readings out. The telemetry agent
	// is an adapter (it speaks HTTP to exporters and the server) that knows
	// the server only by its wire format.
	forbidden["meter/dcgm"] = io
	forbidden["agent"] = []string{"database/sql", "github.com/jackc/", "modernc.org/", "k8s.io/", "github.com/danielgtaylor/",
		module + "api", module + "store", module + "engine", module + "client"}
	// The dashboard reads through the engine, like the API.
	forbidden["web"] = []string{module + "store", "database/sql", "github.com/jackc/", "modernc.org/", module + "api", module + "client"}
	return forbidden
}

// TestImports fails when a package imports what its layer must not.
func TestImports(t *testing.T) {
	for dir, bad := range forbiddenImports() {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("package %s has no Go files; update the table", dir)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, b := range bad {
					if path == b || strings.HasPrefix(path, b+"/") || (strings.HasSuffix(b, "/") && strings.HasPrefix(path, b)) {
						t.Errorf("%s imports %s, which package %s must not", file, path, dir)
					}
				}
			}
		}
	}
}

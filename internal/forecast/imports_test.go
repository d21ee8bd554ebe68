package forecast

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package pure: the standard library without I/O
// adapters, gonum, and the validation package.
func TestImports(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	banned := []string{"net", "database/sql", "os/exec", "syscall"}
	allowed := []string{"gonum.org/v1/gonum/", "github.com/neocloud/neocloud/internal/valid"}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			ok := !strings.Contains(strings.Split(path, "/")[0], ".") // the standard library
			for _, b := range banned {
				if path == b || strings.HasPrefix(path, b+"/") {
					ok = false
				}
			}
			for _, a := range allowed {
				if path == a || strings.HasPrefix(path, a) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s: the forecast is pure (standard library, gonum, valid)", file, path)
			}
		}
	}
}

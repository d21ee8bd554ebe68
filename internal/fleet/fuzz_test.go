package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// addSeeds adds the testdata fleet files and the presets to a fuzz corpus.
func addSeeds(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, p := range Presets() {
		s, err := Generate(p, 1)
		if err != nil {
			f.Fatal(err)
		}
		y, err := s.YAML()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(y)
		j, err := s.CanonicalJSON()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(j)
	}
	for _, hostile := range []string{
		"version: " + strings.Repeat("[", 40),
		"version: 1\nsites:\n" + strings.Repeat("- ", 120) + "x\n",
		"version: 1\n---\nversion: 1\n",
		"version: 1\nsites: &s []\nx: *s\n",
		"version: 1\nsites:\n  - name: a\n    pods:\n      - {name: p, count: \"12\"}\n",
	} {
		f.Add([]byte(hostile))
	}
	f.Add([]byte("version: 1\nsites:\n  - {name: a, facility_mw: 1, pue: 1.2, timezone: UTC, power_domains: [{name: d, budget_kw: 1}], " +
		"pods: [{name: 'p{n}', count: 10000, power_domain: d, leaf_groups: [{name: l, nodes: [{name: 'n{n}', count: 10000, model: B200}]}]}]}\n"))
}

// FuzzParse checks that no input makes Parse, Validate or Expand panic or
// expand past MaxNodes, that Validate and Expand agree, and that every valid
// spec round-trips through YAML.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		verr := s.Validate()
		fl, err := s.Expand()
		if (verr == nil) != (err == nil) {
			t.Fatalf("Validate() = %v but Expand() error = %v", verr, err)
		}
		if err != nil {
			return
		}
		if len(fl.Nodes) > MaxNodes {
			t.Fatalf("Expand() gave %d nodes, over the limit", len(fl.Nodes))
		}
		y, err := s.YAML()
		if err != nil {
			t.Fatalf("YAML() of a valid spec: %v", err)
		}
		back, err := Parse(y)
		if err != nil {
			t.Fatalf("Parse(YAML()) error = %v\n%s", err, y)
		}
		if diff := cmp.Diff(s, back); diff != "" {
			t.Fatalf("YAML round trip mismatch (-want +got):\n%s", diff)
		}
	})
}

// FuzzDecodeJSON checks that no JSON input makes DecodeJSON, Validate or
// Expand panic.
func FuzzDecodeJSON(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeJSON(data)
		if err != nil {
			return
		}
		if _, err := s.Expand(); err == nil {
			if _, err := s.YAML(); err != nil {
				t.Fatalf("YAML() of a valid spec: %v", err)
			}
		}
	})
}

package fleet

import "testing"

func referenceSpec(b *testing.B) *Spec {
	b.Helper()
	s, err := Generate(PresetReference300MW, 1)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkExpandReference expands the reference 300 MW site (31,425 nodes
// with seed 1).
func BenchmarkExpandReference(b *testing.B) {
	s := referenceSpec(b)
	b.ReportAllocs()
	for b.Loop() {
		f, err := s.Expand()
		if err != nil {
			b.Fatal(err)
		}
		if len(f.Nodes) != 31_488-63 {
			b.Fatalf("%d nodes", len(f.Nodes))
		}
	}
}

// BenchmarkValidateReference validates the reference site, names included.
func BenchmarkValidateReference(b *testing.B) {
	s := referenceSpec(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseReference parses the reference site's fleet file.
func BenchmarkParseReference(b *testing.B) {
	y, err := referenceSpec(b).YAML()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(y)))
	for b.Loop() {
		if _, err := Parse(y); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPoolsReference sums the reference site per pool.
func BenchmarkPoolsReference(b *testing.B) {
	f, err := referenceSpec(b).Expand()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(Pools(f)) != 3 {
			b.Fatal("want 3 pools")
		}
	}
}

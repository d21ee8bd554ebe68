package postgres

import "testing"

func TestWithSearchPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://neocloud@127.0.0.1:5432/neocloud?sslmode=disable",
			"postgres://neocloud@127.0.0.1:5432/neocloud?search_path=t_1%2Cpublic&sslmode=disable"},
		{"postgresql://u:p@h/db?search_path=old", "postgresql://u:p@h/db?search_path=t_1%2Cpublic"},
		{"host=127.0.0.1 user=neocloud dbname=neocloud", "host=127.0.0.1 user=neocloud dbname=neocloud search_path=t_1,public"},
	} {
		got, err := withSearchPath(tc.in, "t_1,public")
		if err != nil || got != tc.want {
			t.Errorf("withSearchPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

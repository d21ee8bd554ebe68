package agent

import (
	"strings"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	ok := Config{Server: "https://neocloud.example:8443/", Name: "rack-07", Scrape: []string{"http://127.0.0.1:9400/metrics"}, BufferDir: "/var/lib/neocloud-agent"}
	a, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	c := a.cfg
	if c.Interval != DefaultInterval || c.ScrapeTimeout != 5*time.Second || c.PushTimeout != DefaultPushTimeout ||
		c.BufferMax != DefaultBufferMax || c.RejectedMax != DefaultBufferMax/8 {
		t.Errorf("defaults not filled: %+v", c)
	}
	withPassword := ok
	withPassword.Server = "https://agent:secret@neocloud.example/"
	if a, err := New(withPassword); err != nil || strings.Contains(a.pushFor, "secret") {
		t.Errorf("push URL for logs %q (%v): want the password redacted", a.pushFor, err)
	}
	if a.pushURL != "https://neocloud.example:8443/v1/telemetry" {
		t.Errorf("push URL %s", a.pushURL)
	}
	if len(a.bootID) != 16 {
		t.Errorf("boot ID %q: want 16 hex digits", a.bootID)
	}
	if b, _ := New(ok); b.bootID == a.bootID {
		t.Error("two agents drew the same boot ID")
	}
	short := ok
	short.Interval = time.Second
	if a, err := New(short); err != nil || a.cfg.ScrapeTimeout != time.Second {
		t.Errorf("interval 1s: scrape timeout %v, %v; want 1s", a, err)
	}

	tests := []struct {
		name string
		edit func(*Config)
		says string
	}{
		{"no server", func(c *Config) { c.Server = "" }, "server"},
		{"relative server", func(c *Config) { c.Server = "neocloud:8080" }, "server"},
		{"name with a space", func(c *Config) { c.Name = "rack 07" }, "name"},
		{"no name", func(c *Config) { c.Name = "" }, "name"},
		{"no buffer dir", func(c *Config) { c.BufferDir = "" }, "buffer dir"},
		{"no source", func(c *Config) { c.Scrape = nil }, "scrape"},
		{"bad scrape URL", func(c *Config) { c.Scrape = []string{"localhost:9400"} }, "scrape URL"},
		{"password in a scrape URL is not printed", func(c *Config) { c.Scrape = []string{"ftp://u:secret@h/metrics"} }, "u:xxxxx@h"},
		{"the same exporter twice", func(c *Config) { c.Scrape = append(c.Scrape, c.Scrape[0]) }, "scrape URL 2: the same"},
		{"interval too short", func(c *Config) { c.Interval = time.Millisecond }, "interval"},
		{"negative buffer", func(c *Config) { c.BufferMax = -1 }, "buffer max"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("New = %v, want an error about %s", err, tt.says)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows a password: %v", err)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/not-a-dir"
	write(t, file, "x")
	a, err := New(Config{Server: "http://127.0.0.1:1", Name: "a", Scrape: []string{"http://127.0.0.1:2/metrics"}, BufferDir: file})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "spool") {
		t.Errorf("Run on a file as the spool = %v, want a spool error", err)
	}
	if err := a.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a second Run = %v, want an error", err)
	}
	b, err := New(Config{Server: "http://127.0.0.1:1", Name: "a", Scrape: []string{"http://127.0.0.1:2/metrics"}, BufferDir: dir, MetricsAddr: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Errorf("Run with a bad metrics address = %v, want a metrics error", err)
	}
}

package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/neocloud/neocloud/internal/agent"
	"github.com/neocloud/neocloud/internal/meter/dcgm"
)

func newAgentCmd(e *env) *cobra.Command {
	var (
		o                   agent.Config
		bufferMax, mapping  string
		logFormat, logLevel string
		useNVML             bool
	)
	cmd := &cobra.Command{
		Use:   "agent --server URL --token KEY --scrape URL...",
		Short: "Push GPU telemetry from DCGM exporters to the server",
		Long: `agent runs next to the DCGM exporters (dcgm-exporter) of GPU nodes: every
--interval it reads each --scrape URL, turns what it reads into one batch of
readings per GPU, writes the batch to --buffer-dir and pushes it to the
server (POST /v1/telemetry). A batch stays on disk until the server has it:
an outage or a restart loses nothing, and the oldest batches are dropped
only past --buffer-max. A batch the server refuses (a 4xx other than 401,
403, 408 and 429) goes to --buffer-dir/rejected/. See docs/agent.md.

The server URL and the API key come from --server / NEOCLOUD_SERVER and
--token / NEOCLOUD_TOKEN (or --token-file). It stops on SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(serveOptions{logFormat: logFormat, logLevel: logLevel}, e.stderr)
			if err != nil {
				return err
			}
			if e.token == "" {
				return errors.New("agent: an API key is required: --token, NEOCLOUD_TOKEN or --token-file")
			}
			if len(o.Scrape) == 0 && !useNVML {
				return errors.New("agent: --scrape URL (a DCGM exporter's /metrics) is required, or --nvml")
			}
			if o.BufferMax, err = parseSize(bufferMax); err != nil {
				return fmt.Errorf("--buffer-max: %w", err)
			}
			if o.Name == "" {
				o.Name = agentName(os.Hostname)
			}
			if mapping != "" {
				if o.Mapping, err = dcgm.LoadMapping(mapping); err != nil {
					return fmt.Errorf("--mapping: %w", err)
				}
			}
			if useNVML {
				host, err := os.Hostname()
				if err != nil {
					return fmt.Errorf("--nvml: %w", err)
				}
				n, err := agent.NewNVML(host, o.Mapping)
				if err != nil {
					return fmt.Errorf("--nvml: %w", err)
				}
				defer n.Close()
				o.Sources = append(o.Sources, n)
			}
			o.Server, o.Token, o.Logger = e.server, e.token, log
			a, err := agent.New(o)
			if err != nil {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.Scrape, "scrape", nil, "a DCGM exporter's metrics URL, e.g. http://127.0.0.1:9400/metrics (repeat for more)")
	f.DurationVar(&o.Interval, "interval", agent.DefaultInterval, "time between two reads of the exporters")
	f.StringVar(&o.BufferDir, "buffer-dir", "neocloud-agent", "spool directory: batches not yet delivered, and rejected/")
	f.StringVar(&bufferMax, "buffer-max", "256MiB", "the spool's bound (B, KB, MB, GB, KiB, MiB, GiB); past it the oldest batches are dropped")
	f.StringVar(&mapping, "mapping", "", "YAML file mapping exporter hostnames and GPU UUIDs to node names (see docs/agent.md)")
	f.StringVar(&o.Name, "name", "", "the agent's name, the start of its batch IDs (default: the host name)")
	f.StringVar(&o.MetricsAddr, "metrics-addr", "", "address to serve the agent's Prometheus metrics (/metrics) and /healthz on, e.g. 127.0.0.1:9401")
	f.BoolVar(&useNVML, "nvml", false, "also read this host's GPUs through NVML (a binary built with -tags nvml)")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

// parseSize reads a byte count: a whole number with an optional unit, B,
// KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
func parseSize(s string) (int64, error) {
	num := strings.TrimRightFunc(strings.TrimSpace(s), unicode.IsLetter)
	unit := strings.TrimSpace(strings.TrimSpace(s)[len(num):])
	num = strings.TrimSpace(num)
	mult := map[string]int64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}[strings.ToLower(unit)]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q: want a positive size such as 256MiB or 1GB", s)
	}
	return n * mult, nil
}

// agentName returns the host's name made into an agent name (letters,
// digits, . _ -; at most 64), or "agent" when there is none.
func agentName(hostname func() (string, error)) string {
	h, err := hostname()
	if err != nil {
		return "agent"
	}
	name := strings.Map(func(r rune) rune {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '_' || r == '-') {
			return r
		}
		return '-'
	}, h)
	if len(name) > 64 {
		name = name[:64]
	}
	if name == "" {
		return "agent"
	}
	return name
}

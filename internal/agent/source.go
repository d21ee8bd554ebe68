package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/neocloud/neocloud/internal/meter"
	"github.com/neocloud/neocloud/internal/meter/dcgm"
)

// Source reads the GPUs it knows at one instant: a DCGM exporter over
// HTTP (the Scrape URLs), or NVML on the local host (NewNVML).
type Source interface {
	// Name identifies the source in logs and metrics; it holds no secret.
	Name() string
	// Read returns the GPUs' readings, stamped at (unless the source
	// knows better), each of which passes meter.Batch.Validate.
	Read(ctx context.Context, at time.Time) ([]meter.Reading, error)
}

// maxScrapeBytes bounds one exporter response: an 8-GPU scrape of the
// default counters is about 45 KB.
const maxScrapeBytes = 32 << 20

// exporter is a DCGM exporter's /metrics endpoint.
type exporter struct {
	url     string
	name    string // url without its password
	client  *http.Client
	mapping *dcgm.Mapping
}

func newExporter(raw string, client *http.Client, m *dcgm.Mapping) (*exporter, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("scrape URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("scrape URL %q: want an absolute http(s) URL such as http://127.0.0.1:9400/metrics", u.Redacted())
	}
	return &exporter{url: raw, name: u.Redacted(), client: client, mapping: m}, nil
}

func (x *exporter) Name() string { return x.name }

// Read scrapes the exporter and parses its answer with dcgm.Parse.
func (x *exporter) Read(ctx context.Context, at time.Time) ([]meter.Reading, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, x.url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", x.name, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := x.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is said once, below
		}
		return nil, fmt.Errorf("scrape %s: %w", x.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("scrape %s: %s", x.name, resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" {
		return nil, fmt.Errorf("scrape %s: a web page (text/html), not metrics: is the path /metrics?", x.name)
	}
	body := &limitedReader{r: resp.Body, n: maxScrapeBytes}
	rs, err := dcgm.Parse(body, at, x.mapping)
	if body.over {
		return nil, fmt.Errorf("scrape %s: the response is larger than %d bytes", x.name, maxScrapeBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", x.name, err)
	}
	return rs, nil
}

// limitedReader reads at most n bytes of r and notes when r had more.
type limitedReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var b [1]byte
		if n, _ := l.r.Read(b[:]); n > 0 {
			l.over = true
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

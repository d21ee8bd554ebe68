// Package client is the Go client of Neocloud's HTTP API, used by the CLI.
// It speaks the api package's transport types and turns RFC 9457 problem
// bodies into *ProblemError.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one Neocloud server with one API key.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client for the server at base (e.g. http://127.0.0.1:8080)
// authenticating with token (may be empty for public routes).
func New(base, token string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want an http(s) URL such as http://127.0.0.1:8080", base)
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 5 * time.Minute}}, nil
}

// ProblemError is an error answered by the server as a problem document.
type ProblemError struct {
	Status int             `json:"status"`
	Title  string          `json:"title"`
	Detail string          `json:"detail"`
	Errors []ProblemDetail `json:"errors"`
	// Reason and EarliestStart come with a 409 for a lease that does not
	// fit.
	Reason        string `json:"reason,omitempty"`
	EarliestStart string `json:"earliest_start,omitempty"`
}

// ProblemDetail is one field-level issue of a problem.
type ProblemDetail struct {
	Message  string `json:"message"`
	Location string `json:"location"`
	Value    any    `json:"value"`
}

// Error prints the problem and each of its issues on its own line.
func (e *ProblemError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Title)
	if e.Detail != "" && e.Detail != e.Title {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	if e.EarliestStart != "" {
		fmt.Fprintf(&b, "\n  earliest start that fits: %s", e.EarliestStart)
	}
	for _, d := range e.Errors {
		b.WriteString("\n  ")
		if d.Location != "" {
			b.WriteString(d.Location + ": ")
		}
		b.WriteString(d.Message)
		if d.Value != nil && d.Value != "" {
			fmt.Fprintf(&b, " (got %v)", d.Value)
		}
	}
	return b.String()
}

// Do sends in (when not nil) as JSON to method path?query and decodes the
// answer into out (when not nil). Non-2xx answers become *ProblemError.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(buf)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if k, _ := ctx.Value(idemKey{}).(string); k != "" {
		req.Header.Set("Idempotency-Key", k)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		pe := &ProblemError{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		if json.Unmarshal(data, pe) != nil || pe.Status == 0 {
			pe.Status, pe.Detail = resp.StatusCode, strings.TrimSpace(string(data))
		}
		return pe
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = data
		return nil
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// Raw sends a request without a body and returns the answer's body as
// it came (CSV, HTML); a non-2xx answer is a *ProblemError.
func (c *Client) Raw(ctx context.Context, method, path string, query url.Values) ([]byte, error) {
	var data []byte
	err := c.Do(ctx, method, path, query, nil, &data)
	return data, err
}

type idemKey struct{}

// WithIdempotencyKey returns ctx carrying an Idempotency-Key for the
// requests Do sends with it: a retry with the same key gets the first
// answer instead of acting twice.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idemKey{}, key)
}

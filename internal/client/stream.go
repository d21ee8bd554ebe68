package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ServerEvent is one message of a server-sent event stream.
type ServerEvent struct {
	ID    string // the id: field ("" when absent)
	Event string // the event: field
	Data  string // the data: lines, joined by newlines
}

// Stream GETs path?query as a server-sent event stream, resuming after
// lastEventID when it is not "" (the Last-Event-ID header), and calls fn
// with each event until the stream ends (nil), ctx ends (ctx.Err()) or fn
// returns an error (that error). Comments (heartbeats) are skipped. A
// refusal is a *ProblemError. Unlike Do, the request has no overall
// timeout: a stream lasts as long as the caller wants.
func (c *Client) Stream(ctx context.Context, path string, query url.Values, lastEventID string, fn func(ServerEvent) error) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	hc := &http.Client{Transport: c.http.Transport} // no Timeout: it would cut the stream
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		pe := &ProblemError{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		if json.Unmarshal(data, pe) != nil || pe.Status == 0 {
			pe.Status, pe.Detail = resp.StatusCode, strings.TrimSpace(string(data))
		}
		return pe
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("GET %s: answered %q, want text/event-stream", path, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var ev ServerEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" { // the end of one event
			if data != nil {
				ev.Data = strings.Join(data, "\n")
				if err := fn(ev); err != nil {
					return err
				}
			}
			ev, data = ServerEvent{}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // a comment
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.ID = value
		case "event":
			ev.Event = value
		case "data":
			data = append(data, value)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("GET %s: read stream: %w", path, err)
	}
	return nil
}

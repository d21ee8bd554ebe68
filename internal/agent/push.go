package agent

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/neocloud/neocloud/internal/meter"
)

// Retry timing: exponential backoff from backoffBase, doubling up to
// backoffCap, with jitter; a server's Retry-After is honoured up to
// maxRetryAfter.
const (
	backoffBase   = 500 * time.Millisecond
	backoffCap    = time.Minute
	maxRetryAfter = 5 * time.Minute
	// maxAnswerBytes bounds the server's answer that is read.
	maxAnswerBytes = 64 << 10
)

// outcome is what a push came to.
type outcome int

const (
	delivered outcome = iota // 2xx: the server has the batch
	retry                    // 401, 403, 408, 429, 5xx or a network error: push it again later
	refused                  // another 4xx: the batch can never succeed
	missing                  // the batch's file is gone or unreadable
	stopping                 // ctx ended
)

// answer is the server's 2xx body.
type answer struct {
	BatchID    string `json:"batch_id"`
	Accepted   int64  `json:"accepted"`
	Duplicates int64  `json:"duplicates"`
	TooLate    int64  `json:"too_late"`
}

// push delivers the spool's batches oldest first until ctx ends: a batch
// that fails for a reason that may pass is pushed again after a backoff,
// before any later batch, so the server sees the batches in order.
func (a *Agent) push(ctx context.Context, sp *spool) {
	var b backoff
	for {
		e, ok := sp.take()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-sp.wake:
				continue
			}
		}
		out, wait := a.pushOne(ctx, sp, e)
		switch out {
		case stopping:
			sp.release(e)
			return
		case delivered, refused, missing:
			b.reset()
			continue
		}
		sp.release(e)
		d := b.next(wait)
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// pushOne sends one taken batch and settles it: deleted when delivered,
// moved to rejected/ when refused, released by the caller otherwise. For a
// retry, wait is the server's Retry-After (0 when none).
func (a *Agent) pushOne(ctx context.Context, sp *spool, e entry) (out outcome, wait time.Duration) {
	data, err := sp.read(e)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("spooled batch vanished", "file", fileName(e.num))
		} else {
			a.log.Error("spooled batch unreadable; dropping it", "file", fileName(e.num), "error", err)
		}
		if err := sp.remove(e); err != nil {
			a.log.Error("remove spooled batch", "file", fileName(e.num), "error", err)
		}
		return missing, 0
	}
	id := batchID(data)
	status, header, body, err := a.post(ctx, data)
	switch {
	case ctx.Err() != nil:
		return stopping, 0
	case err != nil:
		a.stats.pushErrors.Add(1)
		a.log.Warn("push failed; will retry", "batch_id", id, "error", err)
		return retry, 0
	case status >= 200 && status < 300:
		a.delivered(id, len(data), body)
		if err := sp.remove(e); err != nil {
			a.log.Error("remove delivered batch", "batch_id", id, "error", err)
		}
		return delivered, 0
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// The key is wrong, not the batch: keep it until the key is fixed.
		a.stats.pushErrors.Add(1)
		a.log.Error("server refused the API key; will retry", "batch_id", id, "status", status, "server_message", message(body))
		return retry, retryAfter(header.Get("Retry-After"), a.clock.Now())
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500 || status < 400:
		a.stats.pushErrors.Add(1)
		wait = retryAfter(header.Get("Retry-After"), a.clock.Now())
		a.log.Warn("push failed; will retry", "batch_id", id, "status", status, "retry_after", wait.String(), "server_message", message(body))
		return retry, wait
	}
	deleted, err := sp.reject(e)
	a.stats.rejected.Add(1)
	a.log.Error("server refused batch; moved to rejected/", "batch_id", id, "status", status,
		"server_message", message(body), "file", sp.rejectedPath(e.num))
	if err != nil {
		a.log.Error("reject batch", "batch_id", id, "error", err)
	}
	if deleted > 0 {
		a.log.Warn("rejected/ full: deleted the oldest rejected batches", "deleted", deleted)
	}
	return refused, 0
}

// post sends one batch and returns the answer's status, header and (the
// start of its) body.
func (a *Agent) post(ctx context.Context, data []byte) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.PushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.pushURL, bytes.NewReader(data))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", meter.CSVContentType)
	req.Header.Set("Accept", "application/json")
	if a.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s %s: %w", ue.Op, a.pushFor, ue.Err)
		}
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil && resp.StatusCode/100 != 2 {
		return 0, nil, nil, fmt.Errorf("read answer: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes)) // let the connection be reused
	return resp.StatusCode, resp.Header, body, nil
}

// delivered counts and logs a 2xx answer.
func (a *Agent) delivered(id string, size int, body []byte) {
	a.stats.pushed.Add(1)
	a.stats.bytesPushed.Add(int64(size))
	var ans answer
	if err := json.Unmarshal(body, &ans); err != nil {
		a.log.Debug("batch pushed; answer not understood", "batch_id", id, "error", err)
		return
	}
	a.stats.accepted.Add(ans.Accepted)
	a.stats.duplicates.Add(ans.Duplicates)
	a.stats.tooLate.Add(ans.TooLate)
	a.log.Debug("batch pushed", "batch_id", id, "accepted", ans.Accepted, "duplicates", ans.Duplicates, "too_late", ans.TooLate)
	if ans.TooLate > 0 {
		a.log.Warn("server took readings too late to count", "batch_id", id, "too_late", ans.TooLate, "accepted", ans.Accepted)
	}
}

// batchID returns the ID on a spooled batch's first line, for logs.
func batchID(data []byte) string {
	line, _, _ := bytes.Cut(data, []byte{'\n'})
	for f := range strings.FieldsSeq(string(line)) {
		if id, ok := strings.CutPrefix(f, "batch_id="); ok {
			return id
		}
	}
	return "?"
}

// message returns the server's answer for a log line: its problem
// detail when it is an RFC 9457 problem, else its text, shortened.
func message(body []byte) string {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Errors []struct {
			Message  string `json:"message"`
			Location string `json:"location"`
			Value    any    `json:"value"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &p) == nil && (p.Detail != "" || p.Title != "") {
		var b strings.Builder
		b.WriteString(cmp.Or(p.Detail, p.Title))
		for i, e := range p.Errors {
			if i == 5 {
				fmt.Fprintf(&b, "; and %d more", len(p.Errors)-i)
				break
			}
			fmt.Fprintf(&b, "; %s: %s", e.Location, e.Message)
			if e.Value != nil {
				fmt.Fprintf(&b, " (got %v)", e.Value)
			}
		}
		return shorten(b.String())
	}
	return shorten(strings.TrimSpace(string(body)))
}

func shorten(s string) string {
	const max = 1024
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date. It
// returns 0 when there is none or it cannot be read.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseInt(strings.TrimSpace(h), 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

// backoff is the wait between failed pushes of a batch: exponential from
// backoffBase up to backoffCap, with "equal jitter" (a random wait
// between half the step and the step) so that agents that failed together
// do not retry together.
type backoff struct {
	n int // failures since the last success
}

func (b *backoff) reset() { b.n = 0 }

// next returns the wait before the next try: at least wait (the server's
// Retry-After), else the jittered step.
func (b *backoff) next(wait time.Duration) time.Duration {
	step := backoffCap
	if b.n < 7 { // 500ms << 7 > 1m
		step = min(backoffBase<<b.n, backoffCap)
	}
	b.n++
	d := step/2 + rand.N(step/2+1)
	return max(d, wait)
}

// Package sse writes server-sent event streams (text/event-stream) for the
// API's and the dashboard's live events: the response's headers and
// deadlines, and each write flushed at once. What to send, and when, is
// the caller's.
package sse

import (
	"net/http"
	"time"
)

// Stream is an open event stream.
type Stream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// Open starts an event stream on w: it lifts the read deadline (a GET has
// no more to read, and the server's read timeout would cancel the
// request's context under a long stream), sets the headers and writes the
// 200. Each Send must complete within writeTimeout: a client that stops
// reading is dropped.
func Open(w http.ResponseWriter, writeTimeout time.Duration) *Stream {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	return &Stream{w: w, rc: rc, timeout: writeTimeout}
}

// Send writes b (one or more whole events or comments) and flushes it;
// false when the client is gone or too slow.
func (s *Stream) Send(b []byte) bool {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := s.w.Write(b); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}

package web

import "time"

// SetStreamTiming sets how often the event streams opened from now on
// send heartbeats and re-check their session (tests shorten both).
func SetStreamTiming(s *Server, heartbeat, check time.Duration) {
	h := s.streams()
	h.heartbeat.Store(int64(heartbeat))
	h.check.Store(int64(check))
}

// OpenStreams returns how many event streams are open.
func OpenStreams(s *Server) int64 { return s.streams().open.Load() }

// SetStreamMinRead sets the least time between two reads of one event
// stream opened from now on.
func SetStreamMinRead(s *Server, d time.Duration) { s.streams().minRead.Store(int64(d)) }

// SetInvoiceRows sets how many invoices /invoices lists.
func SetInvoiceRows(s *Server, n int) { s.invoiceRows = n }

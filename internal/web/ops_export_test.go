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

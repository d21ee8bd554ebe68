// Package agent is the telemetry agent: it runs next to the DCGM exporters
// of GPU nodes, reads them every Interval, and pushes the readings to the
// Neocloud server's POST /v1/telemetry in the CSV wire format
// (meter.EncodeCSV), one batch per interval.
//
//	sources ──scrape every Interval──▶ batch ──write, fsync, rename──▶ spool (BufferDir)
//	                                                                      │ oldest first
//	                                           server ◀──POST /v1/telemetry┘
//	                       2xx: delete · 401/403/408/429/5xx/network: retry with backoff
//	                       other 4xx: move to BufferDir/rejected/
//
// A batch is on disk before the agent tries to push it, so a crash, a
// restart or a server outage loses nothing: the next run pushes what the
// spool holds, each batch with the ID it was written with, and the server
// counts a batch once however often it arrives. Batch IDs are the agent's
// name, a random ID for the process and a sequence number, so they never
// repeat across restarts.
//
// The spool is bounded (BufferMax bytes): past it the oldest batches are
// dropped, counted and logged. Rejected batches (a 4xx other than 408 and
// 429: the server will never take them) are kept for inspection in
// rejected/, which is bounded too. A 401 or 403 is the key's fault, not the
// batch's: those batches are kept and retried until the key is fixed.
//
// An agent is an adapter: it speaks HTTP to the exporters and the server,
// and serves Prometheus metrics about itself on its own registry.
package agent

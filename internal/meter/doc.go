// Package meter turns GPU telemetry into usage: readings pushed by the
// agent (one GPU at one instant, from an NVIDIA DCGM exporter), their wire
// formats, and the rules that make ingestion exact — a reading is counted
// once however often it arrives, in whatever order — and attribute each
// stretch of time to the lease that held the node then (or to the owner's
// internal use, or to idle).
//
// Quantities are integers in fixed units: milliseconds of GPU time,
// millijoules of energy, milliwatts of power, whole percent of utilization.
package meter

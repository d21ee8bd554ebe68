// Package workload reads reservation workloads: CSV files of time-window
// requests for whole nodes, one a line in the order they are submitted, as
// in ../shared/workloads/README.md. They drive the admission and placement
// benchmarks and can be replayed against other schedulers (Slurm
// reservations) on identical requests.
//
// A file starts with the header id,nodes,start,duration_min; [Parse]
// returns its [Request] values, each with its half-open window
// [Start, End()) in UTC, or a [*ParseError] naming the line, the column and
// the rule of the first problem.
package workload

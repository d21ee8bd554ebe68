// Package fleet models what an owner has built: sites with their facility
// power, PUE, energy tariff and time zone; power domains (halls or feeds
// with a shared budget); the fabric (pod ⊃ leaf group ⊃ NVLink domain); the
// nodes placed in them; and the catalog of GPU models those nodes carry.
//
// A fleet is written down as a fleet file (a [Spec], YAML or JSON, format
// version 1): a few templated entries with counts rather than one line per
// server, so that a 30,000-node site fits in a few kilobytes. [Parse] reads
// a file, [Spec.Validate] reports every broken rule at once, and
// [Spec.Expand] turns a valid spec into a [Fleet]: every site and every node
// with its unique name, in a deterministic order. [Generate] writes the
// preset fleets used by the demo, the simulator, the tests and the
// benchmarks, and [Pools] sums a fleet per pool (one GPU model at one site).
package fleet

// The fleet binary must resolve time zones named in fleet files on hosts
// without a zoneinfo database (distroless images, Windows).
import _ "time/tzdata"

// Package billing turns leases into invoices: price plans attached to
// leases, rating (one lease, one UTC calendar month → invoice lines),
// invoices and their lifecycle (draft → finalized → paid | void), credit
// notes, SLA credits, and contract charge schedules for quotes.
//
// The package is pure: no I/O, no clock. The engine supplies each lease's
// facts for a month (metered energy, availability, spot holding), stamps
// IDs and times, and stores what comes back.
//
// Money is exact (internal/money: integer micro-units, checked arithmetic,
// no float64). Every line carries its proof: Amount = Quantity × UnitPrice
// / Per, computed exactly and rounded half-even once to the micro-unit;
// Finalize rounds each line half-even to the cent, once, and the total is
// the sum of the rounded lines. A finalized invoice is sealed by a SHA-256
// hash over a canonical encoding of its content, which Verify recomputes;
// corrections are credit notes, never edits.
//
// The choices where the rules could go more than one way — proration by
// the hour, the SLA credit base, spot GPU-minutes, credit notes — are in
// README.md next to this file.
package billing

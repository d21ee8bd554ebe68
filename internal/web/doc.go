// Package web is the dashboard: server-rendered pages (html/template) over
// the engine, for operators (the fleet, every lease, every invoice) and
// tenants (their own leases and invoices, nothing of other tenants or of
// the owner's internal demand). A visitor signs in with an API key, which
// is exchanged for an HttpOnly, SameSite=Strict session cookie; every form
// carries a CSRF token; each page asks the engine with the key's
// principal, so roles are enforced exactly as in the API. Assets are
// embedded: the dashboard works offline.
package web

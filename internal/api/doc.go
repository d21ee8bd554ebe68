// Package api is Neocloud's HTTP/JSON API: every route under /v1 with the
// permission it declares (routes.go), API-key authentication, RFC 9457
// problem bodies that name the field and the rule, the OpenAPI 3.1 document
// at /openapi.json, /healthz and Prometheus /metrics.
//
// Only this package maps errors to HTTP statuses (problem.go). Transport
// types (transport.go) are separate from domain types and mapped
// explicitly.
package api

// Package egress decides which network addresses the server may call on a
// tenant's behalf (webhook deliveries): never its own network (loopback,
// private, link-local, unique-local, carrier-grade NAT, the cloud metadata
// service at 169.254.169.254) unless the operator allows a range, and never
// its own API.
//
// The check is made twice: on the URL when it is registered (a literal IP
// in a blocked range is refused) and on the address actually connected to,
// after DNS resolution, on every attempt (Policy.Control), so that a host
// name that resolves, or later rebinds, to a blocked address is refused
// too.
package egress

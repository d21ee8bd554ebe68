package webhook

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/neocloud/neocloud/internal/egress"
)

// Timeout bounds one delivery attempt, from dial to the end of the
// (bounded) response.
const Timeout = 10 * time.Second

// maxResponseHeader bounds a receiver's response headers; its body is read
// up to 64 KiB and dropped (Attempt).
const maxResponseHeader = 16 << 10

// NewClient returns the HTTP client that webhook deliveries use: every
// connection goes to an address that policy allows, checked after DNS
// resolution on each attempt (so a name that rebinds to a blocked address
// is refused); no proxy from the environment (it would connect for us,
// past the check); redirects are not followed (a 3xx is a failed call);
// Timeout per attempt.
func NewClient(policy egress.Policy) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: policy.Control}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  Timeout,
		MaxResponseHeaderBytes: maxResponseHeader,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
	}
	return &http.Client{Timeout: Timeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Blocked reports whether err is a connection the egress policy refused.
func Blocked(err error) bool {
	var b *egress.BlockedError
	return errors.As(err, &b)
}

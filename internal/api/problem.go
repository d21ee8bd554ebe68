package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/neocloud/neocloud/internal/billing"
	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/valid"
)

// problem maps an engine or domain error to an RFC 9457 problem. It is the
// one place where errors become HTTP statuses; anything unexpected is logged
// and answered as a 500 without internals.
func (s *Server) problem(ctx context.Context, err error) huma.StatusError {
	if err == nil {
		return nil
	}
	if pe := problemOf(err); pe != nil {
		return pe
	}
	s.log.ErrorContext(ctx, "request failed", slog.String("err", err.Error()), slog.String("request_id", engine.RequestID(ctx)))
	return huma.Error500InternalServerError("internal error; see the server log for request " + engine.RequestID(ctx))
}

// problemOf returns the problem an expected error maps to; nil for nil and
// for an unexpected error (problem logs it and answers 500).
func problemOf(err error) huma.StatusError {
	var (
		se    huma.StatusError
		ve    *valid.Error
		inUse *engine.NodesInUseError
		ref   *engine.Refusal
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return se
	case errors.As(err, &ve):
		return huma.NewError(http.StatusUnprocessableEntity, "validation failed", issueDetails(ve, "body.")...)
	case errors.As(err, &inUse):
		details := make([]error, len(inUse.Nodes))
		for i, n := range inUse.Nodes {
			details[i] = &huma.ErrorDetail{Message: "node holds or will hold an allocation", Location: "node", Value: n}
		}
		return huma.NewError(http.StatusConflict, inUse.Error(), details...)
	case errors.As(err, &ref):
		p := &RefusalProblem{ErrorModel: huma.ErrorModel{Status: http.StatusConflict, Title: "does not fit", Detail: ref.Detail},
			Reason: ref.Reason}
		if !ref.EarliestStart.IsZero() {
			t := ref.EarliestStart.UTC()
			p.EarliestStart = &t
		}
		return p
	case errors.Is(err, engine.ErrState):
		return huma.Error409Conflict(err.Error())
	case errors.Is(err, tenant.ErrNotFound):
		return huma.Error404NotFound("not found")
	case errors.Is(err, tenant.ErrForbidden):
		// The wrapped text says which role lacks which permission; it
		// names nothing of other tenants.
		return huma.Error403Forbidden(err.Error())
	case errors.Is(err, tenant.ErrUnauthenticated):
		return huma.Error401Unauthorized("a valid API key is required: Authorization: Bearer nc_...")
	case errors.Is(err, tenant.ErrExists):
		return huma.Error409Conflict("already exists")
	case errors.Is(err, engine.ErrConflict):
		return huma.Error409Conflict(err.Error())
	case errors.Is(err, billing.ErrTransition), errors.Is(err, billing.ErrNotDraft), errors.Is(err, billing.ErrNotFinalized),
		errors.Is(err, billing.ErrOverCredit):
		// An invoice's state does not allow it, or credits would exceed
		// the invoice: the request conflicts with what is stored.
		return huma.Error409Conflict(err.Error())
	case errors.Is(err, billing.ErrNoSchedule), errors.Is(err, billing.ErrLineAmount),
		errors.Is(err, money.ErrOverflow), errors.Is(err, money.ErrCurrency):
		// An amount too large to represent exactly, or a mix of
		// currencies: the request's numbers cannot be priced.
		return huma.Error422UnprocessableEntity(err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return huma.NewError(http.StatusServiceUnavailable, "request cancelled or timed out")
	default:
		return nil
	}
}

// RefusalProblem is the 409 answer to a valid request that does not fit:
// the reason in one word, the detail in numbers, and the earliest start at
// which the same request would fit, when there is one.
type RefusalProblem struct {
	huma.ErrorModel
	Reason        string     `json:"reason" doc:"capacity, topology, power, isolation or holdback"`
	EarliestStart *time.Time `json:"earliest_start,omitempty"`
}

// issueDetails turns validation issues into problem details whose location
// is prefix + the field path ("body.sites[0].name").
func issueDetails(ve *valid.Error, prefix string) []error {
	out := make([]error, len(ve.Issues))
	for i, is := range ve.Issues {
		loc := is.Field
		if !strings.HasPrefix(loc, "query.") && !strings.HasPrefix(loc, "path.") {
			loc = prefix + loc
		}
		out[i] = &huma.ErrorDetail{Message: is.Rule, Location: loc, Value: is.Value}
	}
	return out
}

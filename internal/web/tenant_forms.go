package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/lease"
	"github.com/neocloud/neocloud/internal/money"
	"github.com/neocloud/neocloud/internal/tenant"
	"github.com/neocloud/neocloud/internal/unit"
	"github.com/neocloud/neocloud/internal/valid"
)

// leaseForm is a lease request as the quote and spot forms submit it, kept
// as text so that a refused form is shown again as it was typed.
type leaseForm struct {
	Tenant, Kind, Pool, Start, End, GPUs, Packing, Isolation, Schedule, MaxPrice, Notice string
}

// leaseFormFields are the names of a leaseForm's fields in forms and
// query strings, in the order they are hashed.
var leaseFormFields = []string{"tenant", "kind", "pool", "start", "end", "gpus", "packing", "isolation", "schedule", "max_price", "notice"}

// leaseFormOf reads a lease form. The tenant field is an operator's: a
// tenant key always acts for its own tenant, whatever the form says.
func leaseFormOf(p tenant.Principal, v url.Values) leaseForm {
	g := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	t := g("tenant")
	if !p.Role.IsOperator() {
		t = ""
	}
	return leaseForm{Tenant: t, Kind: g("kind"), Pool: g("pool"), Start: g("start"), End: g("end"), GPUs: g("gpus"),
		Packing: g("packing"), Isolation: g("isolation"), Schedule: v.Get("schedule"), MaxPrice: g("max_price"), Notice: g("notice")}
}

// values returns f as form values (empty fields left out).
func (f leaseForm) values() url.Values {
	out := url.Values{}
	for i, val := range []string{f.Tenant, f.Kind, f.Pool, f.Start, f.End, f.GPUs, f.Packing, f.Isolation, f.Schedule, f.MaxPrice, f.Notice} {
		if val != "" {
			out.Set(leaseFormFields[i], val)
		}
	}
	return out
}

// Hidden is f as hidden form fields, for a form that submits it again.
func (f leaseForm) Hidden() []termRow {
	var out []termRow
	vals := f.values()
	for _, k := range leaseFormFields {
		if val := vals.Get(k); val != "" {
			out = append(out, termRow{Key: k, Value: val})
		}
	}
	return out
}

// formTimeLayouts are the ways a form may give an instant, all read as UTC:
// what <input type="datetime-local"> sends, and RFC 3339.
var formTimeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339, "2006-01-02 15:04", "2006-01-02"}

func parseFormTime(s string) (time.Time, bool) {
	for _, layout := range formTimeLayouts {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// formTimeValue formats t as <input type="datetime-local"> shows it (UTC).
func formTimeValue(t time.Time) string { return t.UTC().Format("2006-01-02T15:04") }

// request returns the lease request f describes; what cannot be read is
// a *valid.Error naming the field, as the engine names them.
func (f leaseForm) request() (lease.Request, error) {
	var v valid.Error
	r := lease.Request{Kind: lease.Kind(f.Kind), Pool: f.Pool, Packing: lease.Packing(f.Packing), Isolation: lease.Isolation(f.Isolation), Notice: f.Notice}
	at := func(field, s string) time.Time {
		if s == "" {
			return time.Time{}
		}
		t, ok := parseFormTime(s)
		if !ok {
			v.Add(field, s, "must be a UTC time such as 2026-10-01T00:00")
		}
		return t
	}
	r.Start, r.End = at("start", f.Start), at("end", f.End)
	if f.GPUs != "" {
		n, err := strconv.ParseInt(f.GPUs, 10, 64)
		if err != nil {
			v.Add("gpus", f.GPUs, "must be a whole number of GPUs")
		}
		r.GPUs = unit.GPUs(n)
	}
	if f.MaxPrice != "" {
		m, err := money.Parse(f.MaxPrice, "USD")
		if err != nil || m.Currency != "USD" {
			v.Add("max_price", f.MaxPrice, "must be a decimal amount of USD per GPU-hour, e.g. 3.50")
		}
		r.MaxPrice = m
	}
	// A contract's ramp: one step a line, "FROM GPUS" or "FROM MW MW".
	for i, line := range strings.Split(strings.TrimSpace(f.Schedule), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		field := "schedule[" + strconv.Itoa(i) + "]"
		from, amount, ok := strings.Cut(line, " ")
		t, tok := parseFormTime(from)
		if !ok || !tok {
			v.Add(field, line, "must be a UTC time and a size, e.g. \"2026-10-01T00:00 512\" or \"2026-11-01T00:00 5MW\"")
			continue
		}
		amount = strings.TrimSpace(amount)
		step := lease.Step{From: t}
		if mw, isMW := strings.CutSuffix(strings.ToUpper(amount), "MW"); isMW {
			x, err := strconv.ParseFloat(strings.TrimSpace(mw), 64)
			p, perr := unit.PowerFromMW(x)
			if err != nil || perr != nil {
				v.Add(field+".mw", amount, "must be a number of megawatts")
			}
			step.Power = p
		} else {
			n, err := strconv.ParseInt(amount, 10, 64)
			if err != nil {
				v.Add(field+".gpus", amount, "must be a whole number of GPUs")
			}
			step.GPUs = unit.GPUs(n)
		}
		r.Schedule = append(r.Schedule, step)
	}
	return r, v.Err()
}

// onceLocks serialises the submissions of one form token (striped, so the
// set stays bounded), so that a double click cannot slip two requests past
// the replay check.
type onceLocks struct{ stripes [64]sync.Mutex }

// onceKeyPrefix marks the dashboard's one-time form tokens among the
// engine's remembered responses (the API's Idempotency-Keys).
const onceKeyPrefix = "web-once:"

// validOnce reports whether tok looks like a token of ours (token()).
func validOnce(tok string) bool {
	if len(tok) != 43 {
		return false
	}
	for _, c := range tok {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// formHash is the SHA-256 of a form's path and its lease fields.
func formHash(path string, f leaseForm) string {
	h := sha256.New()
	h.Write([]byte(path))
	vals := f.values()
	for _, k := range leaseFormFields {
		h.Write([]byte{0})
		h.Write([]byte(k + "=" + vals.Get(k)))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// requestOnce asks for the lease r once per form token: the engine
// remembers the new lease's ID with the token in the transaction that
// commits the lease (as for the API's Idempotency-Key), so a second
// submission of the same form finds it and answers that lease (replayed)
// instead of asking again. A refused request is not remembered: the form
// may be corrected and sent again.
func (s *Server) requestOnce(ctx context.Context, locks *onceLocks, p tenant.Principal, once, path string, f leaseForm, r lease.Request) (id string, replayed bool, err error) {
	if !validOnce(once) {
		return "", false, fieldIssue("once", nil, "is missing or malformed: reload the form and submit it again")
	}
	key := onceKeyPrefix + once
	sum := formHash(path, f)
	stripe := sha256.Sum256([]byte(p.KeyID + "\x00" + key))
	mu := &locks.stripes[int(stripe[0])%len(locks.stripes)]
	mu.Lock()
	defer mu.Unlock()
	prev, err := s.eng.IdempotentResponse(ctx, p.KeyID, key)
	switch {
	case err == nil && prev.RequestSHA256 != sum:
		return "", false, fieldIssue("once", nil, "this form was already submitted with other values: reload it")
	case err == nil:
		return string(prev.Body), true, nil
	case !errors.Is(err, engine.ErrNotFound):
		return "", false, err
	}
	rem := &engine.Remember{Scope: p.KeyID, Key: key, RequestSHA256: sum,
		Answer: func(val any, err error) (int, string, []byte, bool) {
			res, ok := val.(engine.LeaseResult)
			if err != nil || !ok {
				return 0, "", nil, false
			}
			return 303, "text/plain; charset=utf-8", []byte(res.Lease.ID), true
		}}
	res, err := s.eng.RequestLease(engine.WithRemember(ctx, rem), p, f.Tenant, r)
	if err != nil {
		return "", false, err
	}
	return res.Lease.ID, false, nil
}

// choice is one option of a select.
type choice struct{ Value, Label string }

// tenantOptions lists the tenants an operator may act for; nil for a
// tenant key (it acts for its own tenant).
func (s *Server) tenantOptions(ctx context.Context, p tenant.Principal) ([]choice, error) {
	if !p.Role.IsOperator() {
		return nil, nil
	}
	ts, err := s.eng.Tenants(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]choice, len(ts))
	for i, t := range ts {
		label := t.ID
		if t.DisplayName != "" && t.DisplayName != t.ID {
			label = t.DisplayName + " (" + t.ID + ")"
		}
		out[i] = choice{t.ID, label}
	}
	slices.SortFunc(out, func(a, b choice) int { return strings.Compare(a.Value, b.Value) })
	return out, nil
}

package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/maphash"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/neocloud/neocloud/internal/engine"
	"github.com/neocloud/neocloud/internal/tenant"
)

// IdempotencyHeader lets a client retry a mutation safely: the first
// response to (key, Idempotency-Key) is remembered for 24 hours and a replay
// of the same request gets it again, marked Idempotent-Replayed: true; the
// same Idempotency-Key with another request is refused with 422.
const IdempotencyHeader = "Idempotency-Key"

// idempotency wraps the mutating requests that carry an Idempotency-Key.
type idempotency struct {
	s *Server
	// locks serialise requests with the same (scope, key), striped by hash
	// so the set stays bounded: two distinct keys may share a stripe, which
	// only costs them some waiting.
	locks [64]sync.Mutex
	seed  maphash.Seed // of the stripe hash
}

func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for _, c := range []byte(k) {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func (s *Server) writeProblem(w http.ResponseWriter, status int, detail, location string, value any) {
	body := map[string]any{"title": http.StatusText(status), "status": status, "detail": detail}
	if location != "" {
		body["errors"] = []map[string]any{{"message": detail, "location": location, "value": value}}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (m *idempotency) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(IdempotencyHeader)
		if key == "" || (r.Method != http.MethodPost && r.Method != http.MethodDelete && r.Method != http.MethodPut && r.Method != http.MethodPatch) {
			next.ServeHTTP(w, r)
			return
		}
		if !validIdempotencyKey(key) {
			m.s.writeProblem(w, http.StatusBadRequest, "must be 1-255 visible ASCII characters", "header.Idempotency-Key", key)
			return
		}
		// Only a valid key gets a remembered answer: anything else goes on
		// to be refused (and audited) by the authentication middleware,
		// before any body is read.
		authz := r.Header.Get("Authorization")
		secret, _ := strings.CutPrefix(authz, "Bearer ")
		p, err := m.s.eng.Authenticate(r.Context(), strings.TrimSpace(secret))
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		scope := p.KeyID
		limit := int64(defaultMaxBody)
		if r.URL.Path == fleetApplyPath {
			limit = fleetMaxBody
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			m.s.writeProblem(w, http.StatusRequestEntityTooLarge, "request body too large", "body", nil)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h := sha256.New()
		for _, part := range []string{r.Method, r.URL.Path, r.URL.RawQuery} {
			h.Write([]byte(part))
			h.Write([]byte{0})
		}
		h.Write(body)
		sum := hex.EncodeToString(h.Sum(nil))

		mu := &m.locks[maphash.Comparable(m.seed, [2]string{scope, key})%uint64(len(m.locks))]
		mu.Lock()
		defer mu.Unlock()
		ctx := r.Context()
		prev, err := m.s.eng.IdempotentResponse(ctx, scope, key)
		switch {
		case err == nil && prev.RequestSHA256 != sum:
			m.s.writeProblem(w, http.StatusUnprocessableEntity, "this Idempotency-Key was used with a different request", "header.Idempotency-Key", key)
			return
		case err == nil:
			w.Header().Set("Content-Type", prev.ContentType)
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(prev.Status)
			_, _ = w.Write(prev.Body)
			return
		case !errors.Is(err, engine.ErrNotFound):
			m.s.log.ErrorContext(ctx, "idempotency lookup", "err", err, "request_id", engine.RequestID(ctx))
			m.s.writeProblem(w, http.StatusInternalServerError, "internal error; see the server log for request "+engine.RequestID(ctx), "", nil)
			return
		}
		call := &idemCall{rem: engine.Remember{Scope: scope, Key: key, RequestSHA256: sum}, authz: authz, p: p}
		rem := &call.rem
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(ctx, idemCallKey{}, call)))
		if saved, ok := rem.Saved(); ok {
			// A capacity command remembered its answer in the transaction
			// that committed it (answering): that is the answer.
			w.Header().Set("Content-Type", saved.ContentType)
			w.WriteHeader(saved.Status)
			_, _ = w.Write(saved.Body)
			return
		}
		rec.send()
		// Remember what the authenticated caller was told, 5xx aside (a
		// retry of a server failure should run again).
		if rec.status == http.StatusUnauthorized || rec.status >= 500 {
			return
		}
		// The answer is remembered even if the caller hung up after it was
		// sent: that caller is the one who will retry.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = m.s.eng.RememberResponse(ctx, engine.IdempotentResponse{Scope: scope, Key: key, RequestSHA256: sum,
			Status: rec.status, ContentType: w.Header().Get("Content-Type"), Body: withoutSecret(rec.body.Bytes())})
		if err != nil {
			m.s.log.ErrorContext(ctx, "idempotency remember", "err", err, "request_id", engine.RequestID(ctx))
		}
	})
}

// idemCallKey carries a request's *idemCall to its handler.
type idemCallKey struct{}

// idemCall is what the idempotency middleware learnt of a request for its
// handler: the Remember of its command (answering), and the principal it
// authenticated from the Authorization header authz, which the
// authentication middleware then need not look up again
// (authenticatedAs).
type idemCall struct {
	rem   engine.Remember
	authz string
	p     tenant.Principal
}

// authenticatedAs returns the principal the idempotency middleware
// authenticated for the request of ctx from the Authorization header
// authz; false when it did not.
func authenticatedAs(ctx context.Context, authz string) (tenant.Principal, bool) {
	c, _ := ctx.Value(idemCallKey{}).(*idemCall)
	if c == nil || c.authz != authz {
		return tenant.Principal{}, false
	}
	return c.p, true
}

// answering returns ctx for submitting the capacity command of a request
// that carries an Idempotency-Key, such that the command remembers the
// answer in the transaction that commits it: status and the transport
// value render(val) on success, the problem of an expected error
// otherwise. Without the header it returns ctx. When the command
// remembered its answer (remembered), the handler may return no output:
// the idempotency middleware sends the remembered answer.
func (s *Server) answering(ctx context.Context, status int, render func(val any) (any, error)) context.Context {
	c, _ := ctx.Value(idemCallKey{}).(*idemCall)
	if c == nil {
		return ctx
	}
	rem := &c.rem
	rem.Answer = func(val any, err error) (int, string, []byte, bool) {
		if err == nil {
			out, err := render(val)
			if err != nil {
				return 0, "", nil, false // not remembered: the handler answers
			}
			return s.marshalAnswer(status, out)
		}
		pe := problemOf(err)
		if pe == nil || pe.GetStatus() >= 500 {
			return 0, "", nil, false // not remembered: a retry runs again
		}
		return s.marshalAnswer(pe.GetStatus(), pe)
	}
	return engine.WithRemember(ctx, rem)
}

// remembered reports whether the command submitted with ctx (answering)
// remembered its answer.
func remembered(ctx context.Context) bool {
	c, _ := ctx.Value(idemCallKey{}).(*idemCall)
	if c == nil {
		return false
	}
	_, ok := c.rem.Saved()
	return ok
}

// marshalAnswer renders v as huma writes a handler's output or error: as
// JSON, or problem JSON for a problem.
func (s *Server) marshalAnswer(status int, v any) (int, string, []byte, bool) {
	ct := "application/json"
	if f, ok := v.(huma.ContentTypeFilter); ok {
		ct = f.ContentType(ct)
	}
	var b bytes.Buffer
	if err := s.api.Marshal(&b, ct, v); err != nil {
		return 0, "", nil, false
	}
	return status, ct, b.Bytes(), true
}

// recorder holds a response back and keeps it, to be sent (send) unless
// the answer remembered with the request's command replaces it.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.body.Write(p)
}

// send writes the response held back.
func (r *recorder) send() {
	r.ResponseWriter.WriteHeader(r.status)
	_, _ = r.ResponseWriter.Write(r.body.Bytes())
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// secretWithheld replaces the secret of a new API key or webhook endpoint
// in a remembered response: secrets are not stored with answers, so a
// replay of the creation tells the caller the object exists but cannot
// show its secret again.
const secretWithheld = "(withheld: a secret is shown once; revoke the key or delete the webhook, and create another)"

// withoutSecret returns body with a top-level "secret" field withheld.
func withoutSecret(body []byte) []byte {
	if !bytes.Contains(body, []byte(`"secret"`)) {
		return body // not decoded: most answers have no secret
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return body
	}
	if _, ok := obj["secret"]; !ok {
		return body
	}
	obj["secret"], _ = json.Marshal(secretWithheld)
	out, err := json.Marshal(obj)
	if err != nil {
		return []byte(`{}`)
	}
	return out
}

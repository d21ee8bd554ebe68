package api

import (
	"fmt"
	"sync"
	"time"
)

// Requests without a valid key are audited one row each up to a rate;
// beyond it they are counted, and the next audited one says how many were
// folded into it. Otherwise anyone who can reach the port could grow the
// append-only audit log without bound and hold the single writer.
const (
	anonAuditPerSecond = 10
	anonAuditBurst     = 100
)

// denialBudget is a token bucket over the engine's clock.
type denialBudget struct {
	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int64
}

// take reports whether this refusal gets its own audit row; when it does,
// note says how many refusals before it did not ("" when none).
func (b *denialBudget) take(now time.Time) (ok bool, note string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens = anonAuditBurst
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(anonAuditBurst, b.tokens+d.Seconds()*anonAuditPerSecond)
	}
	b.last = now
	if b.tokens < 1 {
		b.suppressed++
		return false, ""
	}
	b.tokens--
	if b.suppressed > 0 {
		note = fmt.Sprintf(" (and %d earlier refusals without a valid key, over the audit rate of %d/s, not audited one by one)", b.suppressed, anonAuditPerSecond)
		b.suppressed = 0
	}
	return true, note
}

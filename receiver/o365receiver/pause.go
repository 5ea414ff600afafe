package o365receiver

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Graph's Retry-After pauses a tenant's throttling family; the pause is kept in storage so that a
// process restarted inside it (a crash loop, a deploy, another replica taking the tenant over) does not
// send at once. One small key per tenant × family, beside the checkpoints and written through the same
// client (a tenant lease's fenced one with several replicas).

// storedPause is the value of a pause key.
type storedPause struct {
	Until time.Time `json:"until"`
}

// pauseLedger serialises the writes of one receiver's pause keys, so that the end a key holds only
// moves later (two streams of a family may be paused by 429s answered in either order).
type pauseLedger struct {
	mu      sync.Mutex
	written map[string]time.Time
}

func newPauseLedger() *pauseLedger { return &pauseLedger{written: map[string]time.Time{}} }

// pauseStorageKey is where the pause of the task's tenant and throttling family is kept.
func (t *task) pauseStorageKey() string { return "o365/pause/" + t.tenant.TenantID + "/" + t.ds.Family }

// savePause keeps the end of a Retry-After pause (graph.Request.OnPause). A failed write is logged: the
// pause still holds in this process.
func (t *task) savePause(until time.Time) {
	l, key := t.r.pauses, t.pauseStorageKey()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !until.After(l.written[key]) {
		return
	}
	value, _ := json.Marshal(storedPause{Until: until.UTC()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.store.Set(ctx, key, value); err != nil {
		t.logger().Warn("Cannot keep the Retry-After pause in storage; a restart before it ends would not wait for it",
			zap.Time("until", until), zap.Error(err))
		return
	}
	l.written[key] = until
}

// restorePause puts a pause kept in storage back into the request budget, before the task's first
// request.
func (t *task) restorePause(ctx context.Context) {
	raw, err := t.store.Get(ctx, t.pauseStorageKey())
	if err != nil || raw == nil {
		if err != nil && ctx.Err() == nil {
			t.logger().Warn("Cannot read the Retry-After pause kept in storage", zap.Error(err))
		}
		return
	}
	var p storedPause
	if json.Unmarshal(raw, &p) != nil || !p.Until.After(time.Now()) {
		return
	}
	t.r.budget.Pause(t.pauseKey, p.Until)
	t.logger().Info("Waiting out a Retry-After pause Graph gave before the restart", zap.Time("until", p.Until))
}

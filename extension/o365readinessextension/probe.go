package o365readinessextension

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelcol-o365/otelcol-o365/extension/o365readinessextension/internal/metadata"
	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

// maxConcurrentProbes bounds the probes in flight across all tenants: each waits for its tenant's Graph
// request budget, and a burst of readiness requests must not queue many of them.
const maxConcurrentProbes = 4

// Probe result kinds besides Graph's error kinds (transient, throttled, auth, permission, licence,
// bad_request).
const (
	probeKindTimeout       = "timeout"
	probeKindNotConfigured = "not_configured"
)

// probeResult is the outcome of one Provider.Probe call.
type probeResult struct {
	at time.Time
	ok bool
	// kind classifies a failure: a Graph error kind, timeout or not_configured.
	kind    string
	status  int
	code    string
	message string
}

type probeKey struct {
	receiver component.ID
	tenant   string
	dataset  string
}

type probeEntry struct {
	result  *probeResult
	running chan struct{} // non-nil while a probe runs; closed when it ends
}

// probeCache sends at most one probe per tenant × dataset per interval, shares a running probe between
// concurrent readers, and runs probes in the background so that a client leaving does not waste one.
type probeCache struct {
	cfg ProbeConfig
	tb  *metadata.TelemetryBuilder
	now func() time.Time
	sem chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	stopped bool
	entries map[probeKey]*probeEntry
}

func newProbeCache(cfg ProbeConfig, tb *metadata.TelemetryBuilder, now func() time.Time) *probeCache {
	ctx, cancel := context.WithCancel(context.Background())
	return &probeCache{
		cfg: cfg, tb: tb, now: now, sem: make(chan struct{}, maxConcurrentProbes),
		ctx: ctx, cancel: cancel, entries: map[probeKey]*probeEntry{},
	}
}

// cached returns the latest probe result, however old, without sending anything (nil: never probed).
func (c *probeCache) cached(key probeKey) *probeResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil {
		return e.result
	}
	return nil
}

// probe returns a result younger than the interval, sending a probe when there is none (or joining the
// one in flight) and waiting for it until ctx ends; then it returns the latest result it has, if any.
func (c *probeCache) probe(ctx context.Context, key probeKey, p o365status.Provider) *probeResult {
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		e = &probeEntry{}
		c.entries[key] = e
	}
	if e.result != nil && c.now().Sub(e.result.at) < c.cfg.Interval {
		r := e.result
		c.mu.Unlock()
		return r
	}
	if e.running == nil && !c.stopped {
		done := make(chan struct{})
		e.running = done
		c.wg.Add(1)
		go c.run(key, e, done, p)
	}
	running := e.running
	c.mu.Unlock()
	if running != nil {
		select {
		case <-running:
		case <-ctx.Done():
		}
	}
	return c.cached(key)
}

func (c *probeCache) run(key probeKey, e *probeEntry, done chan struct{}, p o365status.Provider) {
	defer c.wg.Done()
	var res *probeResult
	defer func() {
		c.mu.Lock()
		if res != nil && c.entries[key] == e { // not forgotten meanwhile
			e.result = res
		}
		e.running = nil
		c.mu.Unlock()
		close(done)
	}()
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
	case <-c.ctx.Done():
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.Timeout)
	defer cancel()
	err := p.Probe(ctx, key.tenant, key.dataset)
	if c.ctx.Err() != nil {
		return // shutting down: nothing learnt
	}
	res = classifyProbe(err, ctx.Err() != nil, c.now())
	result := "ok"
	switch {
	case res.kind == probeKindTimeout:
		result = "timeout"
	case !res.ok:
		result = "failed"
	}
	if res.kind != probeKindNotConfigured {
		c.tb.O365ReadinessProbes.Add(context.Background(), 1, metric.WithAttributes(attribute.String("result", result)))
	}
}

// classifyProbe turns a Probe error into a result; timedOut says the probe's deadline passed.
func classifyProbe(err error, timedOut bool, at time.Time) *probeResult {
	res := &probeResult{at: at, ok: err == nil}
	if err == nil {
		return res
	}
	res.message = err.Error()
	var ge *graph.Error
	switch {
	case errors.Is(err, o365status.ErrAuditingDisabled): // before its Graph error, a 400 of no use to the reader
		res.kind = o365status.ErrorAuditingDisabled
	case errors.As(err, &ge):
		res.kind, res.status, res.code = ge.Kind.String(), ge.Status, ge.Code
		if timedOut && ge.Kind == graph.KindTransient && ge.Status == 0 {
			res.kind = probeKindTimeout
		}
	case errors.Is(err, o365status.ErrNotConfigured):
		res.kind = probeKindNotConfigured
	case timedOut || errors.Is(err, context.DeadlineExceeded):
		res.kind = probeKindTimeout
		res.message = "no answer within `probe.timeout` (Graph slow, or the tenant's request budget is exhausted by throttling)"
	default:
		res.kind = graph.KindTransient.String()
	}
	return res
}

// forget drops the results of a receiver (it registered anew, or went away).
func (c *probeCache) forget(receiver component.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.entries {
		if k.receiver == receiver {
			delete(c.entries, k)
		}
	}
}

// stop cancels the probes in flight and waits for them.
func (c *probeCache) stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

package o365readinessextension

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/extension/o365readinessextension/internal/metadata"
	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

// The extension learns about o365 receivers through o365status.Registrar, and about every component's
// health through componentstatus.Watcher.
var (
	_ extension.Extension     = (*readinessExtension)(nil)
	_ o365status.Registrar    = (*readinessExtension)(nil)
	_ componentstatus.Watcher = (*readinessExtension)(nil)
)

// readinessExtension serves the readiness API. Start opens the listener (no Graph I/O); Shutdown works
// whether or not Start ran.
type readinessExtension struct {
	cfg *Config
	set extension.Settings
	tb  *metadata.TelemetryBuilder
	// clock is time.Now, replaceable by tests (atomically: handlers read it concurrently).
	clock atomic.Pointer[func() time.Time]

	mu        sync.RWMutex
	providers map[component.ID]o365status.Provider

	statusMu sync.Mutex
	statuses map[string]componentState

	probes   *probeCache
	limiter  *limiterSet
	admin    extensionauth.Server // nil: admin routes are refused
	started  time.Time
	server   *http.Server
	addr     net.Addr
	serveErr chan error
}

// componentState is the latest component status event of one component instance.
type componentState struct {
	id     string
	kind   string
	status componentstatus.Status
	err    error
	since  time.Time
}

func newExtension(set extension.Settings, cfg *Config) (*readinessExtension, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e := &readinessExtension{
		cfg:       cfg,
		set:       set,
		tb:        tb,
		providers: map[component.ID]o365status.Provider{},
		statuses:  map[string]componentState{},
	}
	e.setClock(time.Now)
	e.probes = newProbeCache(cfg.Probe, tb, e.now)
	e.limiter = newLimiterSet(cfg.RunRateLimit.Requests, cfg.RunRateLimit.Per, e.now)
	return e, nil
}

func (e *readinessExtension) now() time.Time { return (*e.clock.Load())() }

func (e *readinessExtension) setClock(f func() time.Time) { e.clock.Store(&f) }

func (e *readinessExtension) Start(ctx context.Context, host component.Host) error {
	if e.cfg.AdminAuth.HasValue() {
		srv, err := e.cfg.AdminAuth.Get().GetServerAuthenticator(ctx, host.GetExtensions())
		if err != nil {
			return fmt.Errorf("`admin_auth`: %w", err)
		}
		e.admin = srv
	} else {
		e.set.Logger.Warn("No `admin_auth` configured: the admin routes (POST /run, GET /tenants) answer 403. Configure an authenticator extension (e.g. bearertokenauth) to enable them.")
	}
	ln, err := e.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("`endpoint` %s: %w", e.cfg.ServerConfig.NetAddr.Endpoint, err)
	}
	srv, err := e.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), e.set.TelemetrySettings, e.handler())
	if err != nil {
		_ = ln.Close()
		return err
	}
	e.server, e.addr, e.started = srv, ln.Addr(), e.now()
	e.serveErr = make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else if err != nil {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
		e.serveErr <- err
	}()
	e.set.Logger.Info("Readiness API listening", zap.String("endpoint", ln.Addr().String()),
		zap.Bool("admin_routes_enabled", e.admin != nil), zap.Bool("readiness_requires_auth", e.cfg.ReadinessRequiresAuth))
	return nil
}

func (e *readinessExtension) Shutdown(ctx context.Context) error {
	e.probes.stop()
	var err error
	if e.server != nil {
		err = e.server.Shutdown(ctx)
		select {
		case serr := <-e.serveErr:
			err = errors.Join(err, serr)
		case <-ctx.Done():
			err = errors.Join(err, ctx.Err())
		}
		e.server = nil
	}
	e.tb.Shutdown()
	return err
}

// RegisterProvider is called by every o365 receiver in its Start.
func (e *readinessExtension) RegisterProvider(id component.ID, p o365status.Provider) {
	e.mu.Lock()
	e.providers[id] = p
	e.mu.Unlock()
	e.probes.forget(id) // a restarted receiver starts with a clean slate
	e.set.Logger.Debug("o365 receiver registered", zap.String("receiver", id.String()))
}

// UnregisterProvider is called by the receiver in its Shutdown.
func (e *readinessExtension) UnregisterProvider(id component.ID) {
	e.mu.Lock()
	delete(e.providers, id)
	e.mu.Unlock()
	e.probes.forget(id)
}

// ComponentStatusChanged records the collector's own view of every component (the same events the
// health_check extension aggregates). It may be called at any time, concurrently.
func (e *readinessExtension) ComponentStatusChanged(source *componentstatus.InstanceID, event *componentstatus.Event) {
	if source == nil || event == nil {
		return
	}
	kind := strings.ToLower(source.Kind().String())
	key := kind + "/" + source.ComponentID().String()
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	prev, ok := e.statuses[key]
	if ok && prev.status == event.Status() && errText(prev.err) == errText(event.Err()) {
		return
	}
	e.statuses[key] = componentState{
		id: source.ComponentID().String(), kind: kind,
		status: event.Status(), err: event.Err(), since: event.Timestamp(),
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// componentStates returns the watched component statuses, sorted.
func (e *readinessExtension) componentStates() []componentState {
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	out := make([]componentState, 0, len(e.statuses))
	for _, s := range e.statuses {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].kind != out[j].kind {
			return out[i].kind < out[j].kind
		}
		return out[i].id < out[j].id
	})
	return out
}

// registered is one registered receiver.
type registered struct {
	id       component.ID
	provider o365status.Provider
}

// receivers returns the registered receivers sorted by id.
func (e *readinessExtension) receivers() []registered {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]registered, 0, len(e.providers))
	for id, p := range e.providers {
		out = append(out, registered{id: id, provider: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id.String() < out[j].id.String() })
	return out
}

// tenantRef is one tenant of one receiver.
type tenantRef struct {
	receiver component.ID
	provider o365status.Provider
	tenant   o365status.Tenant
}

var (
	errTenantUnknown   = errors.New("unknown tenant")
	errTenantAmbiguous = errors.New("ambiguous tenant")
)

// findTenant finds a tenant by name; receiver (a component id such as "o365/eu") selects among
// receivers that share the name, and may be empty when the name is unique.
func (e *readinessExtension) findTenant(name, receiver string) (tenantRef, error) {
	var found []tenantRef
	for _, r := range e.receivers() {
		if t, ok := r.provider.Tenant(name); ok && (receiver == "" || r.id.String() == receiver) {
			found = append(found, tenantRef{receiver: r.id, provider: r.provider, tenant: t})
		}
	}
	switch len(found) {
	case 0:
		if receiver != "" {
			return tenantRef{}, fmt.Errorf("%w: no tenant %q in receiver %q", errTenantUnknown, name, receiver)
		}
		return tenantRef{}, fmt.Errorf("%w: no o365 receiver collects a tenant named %q", errTenantUnknown, name)
	case 1:
		return found[0], nil
	}
	ids := make([]string, 0, len(found))
	for _, f := range found {
		ids = append(ids, f.receiver.String())
	}
	return tenantRef{}, fmt.Errorf("%w: tenant %q is collected by several receivers (%v); add ?receiver=<id>", errTenantAmbiguous, name, ids)
}

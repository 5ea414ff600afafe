package o365readinessextension

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

// AggregateReadiness is the answer of GET /readiness.
type AggregateReadiness struct {
	Ready      bool              `json:"ready"`
	CheckedAt  time.Time         `json:"checked_at"`
	Reasons    []string          `json:"reasons"`
	Warnings   []string          `json:"warnings"`
	Tenants    []TenantSummary   `json:"tenants"`
	Components []ComponentStatus `json:"components"`
}

// TenantSummary is one tenant in the aggregate.
type TenantSummary struct {
	Tenant   string   `json:"tenant"`
	Receiver string   `json:"receiver"`
	Ready    bool     `json:"ready"`
	Standby  bool     `json:"standby"`
	Reasons  []string `json:"reasons"`
	Warnings []string `json:"warnings"`
}

// ComponentStatus is the collector's own view of one component (componentstatus events).
type ComponentStatus struct {
	Component string    `json:"component"`
	Kind      string    `json:"kind"`
	Status    string    `json:"status"`
	Error     string    `json:"error,omitempty"`
	Since     time.Time `json:"since"`
}

// TenantList is the answer of GET /tenants.
type TenantList struct {
	Tenants []TenantInfo `json:"tenants"`
}

// TenantInfo is a configured tenant, without credentials.
type TenantInfo struct {
	Tenant     string           `json:"tenant"`
	Receiver   string           `json:"receiver"`
	TenantID   string           `json:"tenant_id"`
	ClientID   string           `json:"client_id"`
	Cloud      string           `json:"cloud"`
	Credential CredentialStatus `json:"credential"`
	Datasets   []DatasetInfo    `json:"datasets"`
}

// DatasetInfo is a dataset a tenant collects and what Graph requires for it.
type DatasetInfo struct {
	Name               string   `json:"name"`
	Permissions        []string `json:"permissions"`
	Licence            string   `json:"licence"`
	Latency            string   `json:"latency"`
	CountsForReadiness bool     `json:"counts_for_readiness"`
	Streams            []string `json:"streams"`
}

// RunResult is the answer of POST /run/{tenant}.
type RunResult struct {
	Tenant      string    `json:"tenant"`
	Receiver    string    `json:"receiver"`
	Dataset     string    `json:"dataset"`
	Triggered   []string  `json:"triggered"`
	RequestedAt time.Time `json:"requested_at"`
}

// VersionInfo is the answer of GET /version.
type VersionInfo struct {
	Command     string    `json:"command"`
	Description string    `json:"description"`
	Version     string    `json:"version"`
	GoVersion   string    `json:"go_version"`
	Revision    string    `json:"revision,omitempty"`
	Extension   string    `json:"extension"`
	Receivers   []string  `json:"receivers"`
	StartedAt   time.Time `json:"started_at"`
}

// ErrorResponse is the body of every 4xx/5xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// routeClass says who may call a route.
type routeClass int

const (
	// classRead: readiness, status page, version — open unless readiness_requires_auth.
	classRead routeClass = iota
	// classAdmin: run-now and the tenant list — always behind admin_auth, refused without it.
	classAdmin
)

func (e *readinessExtension) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /readiness", e.guard(classRead, e.handleReadiness))
	mux.Handle("GET /tenants/{name}/readiness", e.guard(classRead, e.handleTenantReadiness))
	mux.Handle("GET /version", e.guard(classRead, e.handleVersion))
	mux.Handle("GET /{$}", e.guard(classRead, e.handlePage))
	mux.Handle("GET /tenants", e.guard(classAdmin, e.handleTenants))
	mux.Handle("POST /run/{tenant}", e.guard(classAdmin, e.handleRun))
	// Everything else: 405 when the path exists with another method, 404 otherwise; JSON either way.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			if m == r.Method {
				continue
			}
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
				w.Header().Set("Allow", m)
				writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+"; use "+m)
				return
			}
		}
		writeError(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path+" (see the o365_readiness README)")
	})
	return securityHeaders(mux)
}

// securityHeaders applies to every answer: nothing is cached, sniffed or framed.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// guard admits a request to a route of the class, or answers 401 / 403 itself.
func (e *readinessExtension) guard(class routeClass, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if class == classRead && !e.cfg.ReadinessRequiresAuth {
			next(w, r)
			return
		}
		if e.admin == nil {
			e.countRun(r, "forbidden")
			writeError(w, http.StatusForbidden, "admin routes are disabled: configure `admin_auth` with an authenticator extension (e.g. bearertokenauth)")
			return
		}
		ctx, err := e.admin.Authenticate(r.Context(), r.Header)
		if err != nil {
			e.countRun(r, "unauthorized")
			// The authenticator's message is logged, not returned: it may describe what was expected.
			e.set.Logger.Debug("Request refused by the admin authenticator", zap.String("path", r.URL.Path), zap.Error(err))
			w.Header().Set("WWW-Authenticate", `Bearer realm="o365_readiness"`)
			writeError(w, http.StatusUnauthorized, "unauthorized: this route requires credentials accepted by the `admin_auth` authenticator")
			return
		}
		next(w, r.WithContext(ctx))
	})
}

// countRun counts refused run-now requests (other routes are not counted).
func (e *readinessExtension) countRun(r *http.Request, outcome string) {
	if r.Method == http.MethodPost && r.Pattern == "POST /run/{tenant}" {
		e.tb.O365ReadinessRunRequests.Add(r.Context(), 1, metric.WithAttributes(attribute.String("outcome", outcome)))
	}
}

// probeMode says what a readiness computation may do about probes.
type probeMode int

const (
	// probeCached reads cached probe results and never sends one (aggregate readiness, status page:
	// Kubernetes probes time out after a second, and polling them must cost Graph nothing).
	probeCached probeMode = iota
	// probeFresh sends the probes a tenant needs (at most one per dataset per probe.interval) and waits
	// for them, up to probe.timeout.
	probeFresh
)

// assessTenant gathers what a tenant's readiness needs from its receiver and computes it.
func (e *readinessExtension) assessTenant(ctx context.Context, ref tenantRef, streams []o365status.StreamStatus, mode probeMode) TenantReadiness {
	probes := map[string]*probeResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ds := range ref.tenant.Datasets {
		key := probeKey{receiver: ref.receiver, tenant: ref.tenant.Name, dataset: ds.Name}
		if !needsProbe(streamsOf(streams, ref.tenant.Name, ds.Name)) {
			continue
		}
		if mode == probeCached {
			probes[ds.Name] = e.probes.cached(key)
			continue
		}
		wg.Go(func() {
			res := e.probes.probe(ctx, key, ref.provider)
			mu.Lock()
			probes[ds.Name] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	return assess(assessInput{
		receiver: ref.receiver.String(), tenant: ref.tenant, token: ref.provider.Token(ref.tenant.Name),
		streams: streams, probes: probes, cfg: &e.cfg.Readiness, now: e.now(),
	})
}

// assessAll computes every tenant's readiness from cached probes.
func (e *readinessExtension) assessAll(ctx context.Context) []TenantReadiness {
	var out []TenantReadiness
	for _, r := range e.receivers() {
		streams := r.provider.Streams()
		for _, t := range r.provider.Tenants() {
			out = append(out, e.assessTenant(ctx, tenantRef{receiver: r.id, provider: r.provider, tenant: t}, streams, probeCached))
		}
	}
	return out
}

func (e *readinessExtension) aggregate(ctx context.Context) (AggregateReadiness, []TenantReadiness) {
	tenants := e.assessAll(ctx)
	agg := AggregateReadiness{
		CheckedAt: e.now().UTC(), Reasons: []string{}, Warnings: []string{},
		Tenants: []TenantSummary{}, Components: []ComponentStatus{},
	}
	if len(e.receivers()) == 0 {
		agg.Reasons = append(agg.Reasons, "no o365 receiver has registered with this extension (a receiver registers when it starts: is one in a pipeline of this collector?)")
	}
	for _, t := range tenants {
		agg.Tenants = append(agg.Tenants, TenantSummary{Tenant: t.Tenant, Receiver: t.Receiver, Ready: t.Ready, Standby: t.Standby, Reasons: t.Reasons, Warnings: t.Warnings})
		for _, r := range t.Reasons {
			agg.Reasons = append(agg.Reasons, t.Tenant+": "+r)
		}
		for _, w := range t.Warnings {
			agg.Warnings = append(agg.Warnings, t.Tenant+": "+w)
		}
	}
	for _, s := range e.componentStates() {
		cs := ComponentStatus{Component: s.id, Kind: s.kind, Status: statusName(s.status), Error: errText(s.err), Since: s.since.UTC()}
		agg.Components = append(agg.Components, cs)
		line := fmt.Sprintf("component %s %s reports %s", s.kind, s.id, cs.Status)
		if cs.Error != "" {
			line += ": " + cs.Error
		}
		switch {
		case s.status == componentstatus.StatusPermanentError || s.status == componentstatus.StatusFatalError:
			if e.cfg.Readiness.IncludeComponentStatus {
				agg.Reasons = append(agg.Reasons, line)
			} else {
				agg.Warnings = append(agg.Warnings, line)
			}
		case s.status == componentstatus.StatusRecoverableError:
			agg.Warnings = append(agg.Warnings, line)
		}
	}
	agg.Ready = len(agg.Reasons) == 0
	return agg, tenants
}

// statusName is a component status in lower_snake_case.
func statusName(s componentstatus.Status) string {
	switch s {
	case componentstatus.StatusStarting:
		return "starting"
	case componentstatus.StatusOK:
		return "ok"
	case componentstatus.StatusRecoverableError:
		return "recoverable_error"
	case componentstatus.StatusPermanentError:
		return "permanent_error"
	case componentstatus.StatusFatalError:
		return "fatal_error"
	case componentstatus.StatusStopping:
		return "stopping"
	case componentstatus.StatusStopped:
		return "stopped"
	}
	return "none"
}

func (e *readinessExtension) handleReadiness(w http.ResponseWriter, r *http.Request) {
	agg, _ := e.aggregate(r.Context())
	writeJSON(w, readyStatus(agg.Ready), agg)
}

func (e *readinessExtension) handleTenantReadiness(w http.ResponseWriter, r *http.Request) {
	ref, err := e.findTenant(r.PathValue("name"), r.URL.Query().Get("receiver"))
	if err != nil {
		writeTenantError(w, err)
		return
	}
	// Probes run in the background and are cached whatever happens here; this request waits for them at
	// most a little longer than one probe may take.
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.Probe.Timeout+2*time.Second)
	defer cancel()
	tr := e.assessTenant(ctx, ref, ref.provider.TenantStreams(ref.tenant.Name), probeFresh)
	writeJSON(w, readyStatus(tr.Ready), tr)
}

func (e *readinessExtension) handleTenants(w http.ResponseWriter, _ *http.Request) {
	list := TenantList{Tenants: []TenantInfo{}}
	for _, reg := range e.receivers() {
		streams := reg.provider.Streams()
		for _, t := range reg.provider.Tenants() {
			ti := TenantInfo{
				Tenant: t.Name, Receiver: reg.id.String(), TenantID: t.TenantID, ClientID: t.ClientID, Cloud: t.Cloud,
				Credential: CredentialStatus{Kind: t.Credential, Configured: t.CredentialPresent}, Datasets: []DatasetInfo{},
			}
			for _, ds := range t.Datasets {
				di := DatasetInfo{
					Name: ds.Name, Permissions: nonNil(sortedCopy(ds.Permissions)), Licence: ds.Licence, Latency: ds.Latency,
					CountsForReadiness: e.cfg.Readiness.counts(ds.Name), Streams: []string{},
				}
				for _, s := range streamsOf(streams, t.Name, ds.Name) {
					di.Streams = append(di.Streams, streamName(s))
				}
				ti.Datasets = append(ti.Datasets, di)
			}
			list.Tenants = append(list.Tenants, ti)
		}
	}
	writeJSON(w, http.StatusOK, list)
}

func (e *readinessExtension) handleRun(w http.ResponseWriter, r *http.Request) {
	count := func(outcome string) {
		e.tb.O365ReadinessRunRequests.Add(r.Context(), 1, metric.WithAttributes(attribute.String("outcome", outcome)))
	}
	q := r.URL.Query()
	ref, err := e.findTenant(r.PathValue("tenant"), q.Get("receiver"))
	if err != nil {
		if errors.Is(err, errTenantAmbiguous) {
			count("conflict")
		} else {
			count("not_found")
		}
		writeTenantError(w, err)
		return
	}
	dataset := q.Get("dataset")
	if dataset != "" && !collects(ref.tenant, dataset) {
		count("not_found")
		writeError(w, http.StatusNotFound, fmt.Sprintf("tenant %q collects no dataset %q", ref.tenant.Name, dataset))
		return
	}
	if ok, wait := e.limiter.allow(ref.receiver.String() + "\x00" + ref.tenant.Name); !ok {
		count("rate_limited")
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many run-now requests for tenant %q (`run_rate_limit`: %d per %s); retry in %ds",
			ref.tenant.Name, e.cfg.RunRateLimit.Requests, e.cfg.RunRateLimit.Per, max(secs, 1)))
		return
	}
	started, err := ref.provider.Trigger(ref.tenant.Name, dataset)
	if err != nil {
		if errors.Is(err, o365status.ErrNotConfigured) {
			count("not_found")
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	count("triggered")
	e.set.Logger.Info("Poll requested through the readiness API", zap.String("tenant", ref.tenant.Name),
		zap.String("receiver", ref.receiver.String()), zap.String("dataset", dataset), zap.Strings("streams", started))
	writeJSON(w, http.StatusAccepted, RunResult{
		Tenant: ref.tenant.Name, Receiver: ref.receiver.String(), Dataset: dataset, Triggered: nonNil(started),
		RequestedAt: e.now().UTC(),
	})
}

func (e *readinessExtension) handleVersion(w http.ResponseWriter, _ *http.Request) {
	bi := e.set.BuildInfo
	v := VersionInfo{
		Command: bi.Command, Description: bi.Description, Version: bi.Version, GoVersion: runtime.Version(),
		Extension: e.set.ID.String(), Receivers: []string{}, StartedAt: e.started.UTC(),
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				v.Revision = s.Value
			}
		}
	}
	for _, r := range e.receivers() {
		v.Receivers = append(v.Receivers, r.id.String())
	}
	writeJSON(w, http.StatusOK, v)
}

func collects(t o365status.Tenant, dataset string) bool {
	for _, d := range t.Datasets {
		if d.Name == dataset {
			return true
		}
	}
	return false
}

func readyStatus(ready bool) int {
	if ready {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

func writeTenantError(w http.ResponseWriter, err error) {
	if errors.Is(err, errTenantAmbiguous) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	writeError(w, http.StatusNotFound, err.Error())
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

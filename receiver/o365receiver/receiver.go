package o365receiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/leasing"
	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver/internal/metadata"
)

// o365Receiver runs one poller per tenant × dataset. Start builds clients and queues the pollers in
// the scheduler (no network I/O in Start); Shutdown stops them and closes the storage client.
type o365Receiver struct {
	cfg  *Config
	set  receiver.Settings
	next consumer.Logs
	obs  *receiverhelper.ObsReport
	tb   *metadata.TelemetryBuilder

	storage storage.Client
	leases  leasing.Provider // when the storage extension splits tenants between replicas
	budget  *graph.Budget
	pauses  *pauseLedger // Retry-After pauses kept in storage
	shares  *appShares   // the app-wide budgets, divided between replicas by the tenants they hold
	tasks   []*task
	// byTenant indexes the tenants and their tasks by label.
	byTenant map[string]*tenantStreams
	// clients by tenant label, registrars to unregister from at shutdown
	clients map[string]*graph.Client
	// mgmtClients are the tenants' Management Activity API clients (audit datasets only).
	mgmtClients map[string]*graph.Client
	registrars  []o365status.Registrar
	health      *healthReporter
	sched       *scheduler
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*o365Receiver, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "https",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &o365Receiver{cfg: cfg, set: set, next: next, obs: obs, tb: tb}, nil
}

func (r *o365Receiver) Start(ctx context.Context, host component.Host) error {
	client, err := storageClient(ctx, host, r.cfg.Storage, r.set.ID)
	if err != nil {
		return err
	}
	if r.cfg.Storage == nil {
		r.set.Logger.Warn("No `storage` configured: watermarks are kept in memory, so a restart collects `initial_lookback` again and emits duplicates. Configure a storage extension (sql_storage or file_storage).")
	}
	r.storage = client
	if lp, ok := storageExtension(host, r.cfg.Storage).(leasing.Provider); ok {
		r.leases = lp
		r.set.Logger.Info("The storage extension offers leases: tenants are split between the collector replicas sharing it")
	}
	httpClient, err := r.cfg.HTTP.ToClient(ctx, host.GetExtensions(), r.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("`http`: %w", err)
	}
	r.health = newHealthReporter(host)
	budget := graph.NewBudget(r.cfg.RateLimitMargin)
	budget.MaxMargin = r.cfg.RateLimitMaxMargin
	r.budget, r.pauses = budget, newPauseLedger()
	r.shares = newAppShares(budget, r.cfg.RateLimitMargin)
	r.clients = map[string]*graph.Client{}
	r.mgmtClients = map[string]*graph.Client{}
	r.byTenant = map[string]*tenantStreams{}
	for i := range r.cfg.Tenants {
		t := &r.cfg.Tenants[i]
		ts := &tenantStreams{cfg: t}
		r.byTenant[t.label()] = ts
		graphEndpoint, authority := r.cfg.endpoints(t)
		cred := t.credentialConfig(authority)
		cred.HTTPClient = httpClient
		gc, err := graph.NewClient(graph.ClientSettings{
			HTTPClient: httpClient,
			Endpoint:   graphEndpoint,
			Credential: graph.NewCredentialFactory(cred),
			Scope:      r.cfg.tokenScope(t),
			Budget:     budget,
			Retry:      r.cfg.RetryOnFailure,
			Logger:     r.tenantLogger(t),
			Hooks:      r.graphHooks(t.label()),
		})
		if err != nil {
			return fmt.Errorf("`graph_endpoint`: %w", err)
		}
		r.clients[t.label()] = gc
		for _, ds := range r.cfg.enabledDatasets(t) {
			d := ds.dataset
			client, endpoint := gc, graphEndpoint
			if d.Kind == catalog.ActivityFeed {
				if client, endpoint, err = r.managementClient(t, httpClient, cred, budget); err != nil {
					return err
				}
			}
			if client == nil || !d.AvailableIn(t.Cloud) {
				r.set.Logger.Warn("Dataset is not offered in the tenant's cloud; skipped",
					zap.String("tenant", t.label()), zap.String("dataset", d.Name), zap.String("cloud", t.Cloud))
				continue
			}
			if ds.lookback < d.Lookback {
				r.set.Logger.Warn("The dataset's `lookback` is shorter than its default, which fits Microsoft's documented latency: records later than `lookback` are missed",
					zap.String("tenant", t.label()), zap.String("dataset", d.Name), zap.Duration("lookback", ds.lookback),
					zap.Duration("default", d.Lookback), zap.String("documented_latency", d.Latency))
			}
			// Graph budgets requests per app per tenant, and per app across tenants.
			tenantKey := strings.Join([]string{"tenant", t.TenantID, t.appID(), d.Family}, "|")
			appKey := strings.Join([]string{"app", authority, t.appID(), d.Family}, "|")
			if rl, ok := r.cfg.RateLimits[d.Family]; ok {
				budget.Define(tenantKey, graph.Window{Requests: rl.TenantRequests, Per: rl.Window})
				budget.Define(appKey, graph.Window{Requests: rl.AppRequests, Per: rl.Window})
				r.shares.add(appKey, graph.Window{Requests: rl.AppRequests, Per: rl.Window}, t.TenantID)
			}
			for _, src := range sourcesFor(d, t.Datasets[d.Name]) {
				tk := newTask(r, t, ds, src, client, endpoint, []string{tenantKey, appKey}, tenantKey)
				switch d.Kind {
				case catalog.Snapshot:
					newSnapshotStream(tk)
				case catalog.ActivityFeed:
					newActivityStream(tk)
				default:
					newEventStream(tk)
				}
				r.tasks = append(r.tasks, tk)
				ts.tasks = append(ts.tasks, tk)
			}
		}
	}
	if err := r.tb.RegisterO365BackfillProgressCallback(r.observeProgress); err != nil {
		return err
	}
	if err := r.tb.RegisterO365WatermarkLagCallback(r.observeLag); err != nil {
		return err
	}
	r.sched = newScheduler(r.cfg) // before the extensions can trigger polls
	r.registerWithExtensions(host)
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Go(func() { r.sched.run(runCtx) })
	if r.leases == nil {
		runs := map[*task]<-chan struct{}{}
		for _, tk := range r.tasks {
			tk.useStorage(r.storage)
			runs[tk] = tk.start(runCtx)
		}
		r.wg.Go(func() {
			<-runCtx.Done()
			stopTasks(runs, true)
		})
		return nil
	}
	r.shares.start() // before any tenant is polled
	lc := newLeaseCoordinator(r, r.leases)
	r.wg.Go(func() { lc.run(runCtx) })
	return nil
}

// managementClient returns the tenant's Management Activity API client, made on first use: the Graph
// client's mechanism (origin check, budget, retries) for the Management API's own host and token scope.
// It returns nil when the tenant's cloud has no documented host and `management_endpoint` names none.
func (r *o365Receiver) managementClient(t *TenantConfig, httpClient *http.Client, cred graph.CredentialConfig, budget *graph.Budget) (*graph.Client, string, error) {
	endpoint, scope := r.cfg.management(t)
	if c := r.mgmtClients[t.label()]; c != nil || endpoint == "" {
		return c, endpoint, nil
	}
	c, err := graph.NewClient(graph.ClientSettings{
		HTTPClient: httpClient, Endpoint: endpoint, Credential: graph.NewCredentialFactory(cred), Scope: scope,
		Budget: budget, Retry: r.cfg.RetryOnFailure, Logger: r.tenantLogger(t),
		Hooks: r.graphHooks(t.label()),
	})
	if err != nil {
		return nil, "", fmt.Errorf("`management_endpoint`: %w", err)
	}
	r.mgmtClients[t.label()] = c
	return c, endpoint, nil
}

// Shutdown stops polling and returns once every stream has stopped — or, for a stream whose next
// consumer does not return, after the grace its page in hand is given (stopTasks) — with what the
// streams could not commit yet written and, with leases, the tenants released.
func (r *o365Receiver) Shutdown(ctx context.Context) error {
	r.unregisterFromExtensions()
	if r.cancel != nil {
		r.cancel()
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if r.storage != nil {
		err = errors.Join(err, r.storage.Close(ctx))
	}
	r.tb.Shutdown()
	return err
}

// tenantLogger is the logger of a tenant's Graph clients. Its field is encoded only once the client
// logs (a throttled or failed request): a logger with fields costs kilobytes, and most tenants' clients
// never log.
func (r *o365Receiver) tenantLogger(t *TenantConfig) *zap.Logger {
	return r.set.Logger.WithLazy(zap.String("tenant", t.label()))
}

func (r *o365Receiver) graphHooks(tenant string) graph.Hooks {
	return graph.Hooks{
		OnThrottled: func(dataset string, _ time.Duration) {
			r.tb.O365RequestsThrottled.Add(context.Background(), 1, metricAttrs(tenant, dataset))
		},
	}
}

func (r *o365Receiver) observeLag(_ context.Context, o metric.Float64Observer) error {
	now := time.Now()
	for _, tk := range r.tasks {
		if wm := tk.Status().Watermark; !wm.IsZero() {
			o.Observe(now.Sub(wm).Seconds(), tk.metricAttrs())
		}
	}
	return nil
}

func (r *o365Receiver) observeProgress(_ context.Context, o metric.Float64Observer) error {
	for _, tk := range r.tasks {
		if tk.ds.Kind == catalog.EventStream {
			o.Observe(tk.Status().BackfillProgress, tk.metricAttrs())
		}
	}
	return nil
}

// Streams returns the status of every tenant × dataset × source, for the readiness extension.
func (r *o365Receiver) Streams() []StreamStatus {
	out := make([]StreamStatus, 0, len(r.tasks))
	for _, tk := range r.tasks {
		out = append(out, tk.Status())
	}
	return out
}

func metricAttrs(tenant, dataset string) metric.MeasurementOption {
	return metric.WithAttributes(attrTenant.String(tenant), attrDataset.String(dataset))
}

// healthReporter turns per-stream failures into component status events, reporting only changes of
// which streams fail and why (their error class): RecoverableError while any stream is failing, OK once
// all have recovered.
type healthReporter struct {
	host component.Host

	mu       sync.Mutex
	failing  map[string]streamFailure
	reported string
}

type streamFailure struct {
	kind string
	err  error
}

func newHealthReporter(host component.Host) *healthReporter {
	return &healthReporter{host: host, failing: map[string]streamFailure{}}
}

// update records a stream's latest poll result (err nil = success).
func (h *healthReporter) update(stream, kind string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.failing[stream] = streamFailure{kind: kind, err: err}
	} else {
		delete(h.failing, stream)
	}
	names := make([]string, 0, len(h.failing))
	for k := range h.failing {
		names = append(names, k)
	}
	sort.Strings(names)
	var state, detail []string
	for _, k := range names {
		state = append(state, k+"="+h.failing[k].kind)
		detail = append(detail, k+": "+h.failing[k].err.Error())
	}
	summary := strings.Join(state, ",")
	if summary == h.reported {
		return
	}
	h.reported = summary
	if summary == "" {
		componentstatus.ReportStatus(h.host, componentstatus.NewEvent(componentstatus.StatusOK))
		return
	}
	componentstatus.ReportStatus(h.host, componentstatus.NewRecoverableErrorEvent(errors.New(strings.Join(detail, "; "))))
}

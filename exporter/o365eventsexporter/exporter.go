package o365eventsexporter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365eventsexporter/internal/metadata"
	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
)

// readerConns is the SQLite read pool beside the one writer connection (WAL lets them read while a
// write is under way). Readers map the file (no read syscall per page: a query reads ~100 scattered
// rows) and keep a page cache of their own.
const readerConns = 4

var readerPragmas = []string{"mmap_size(68719476736)", "cache_size(-32768)"}

// writerPragmas: the writer's page cache holds the indexes' hot pages (the unique key's inserts land
// anywhere in it), 64 MiB.
var writerPragmas = []string{"cache_size(-65536)"}

// eventsExporter is the running exporter: Start opens the database and the server, push writes, a
// goroutine enforces the retention. Shutdown works whether or not Start ran.
type eventsExporter struct {
	cfg      *Config
	set      exporter.Settings
	logger   *zap.Logger
	tb       *metadata.TelemetryBuilder
	db       *sqldb.Database
	datasets []byte

	authenticated bool // server.auth is configured: the event routes are open to what it admits
	queryTimeout  time.Duration

	mu    sync.RWMutex
	store *store // nil before Start and after Shutdown

	server   *http.Server
	addr     string // where the server listens
	serveErr chan error
	stop     chan struct{}
	done     sync.WaitGroup
	now      func() time.Time
}

func newEventsExporter(set exporter.Settings, cfg *Config) (*eventsExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	db, err := sqldb.New(metadata.Type.String(), &cfg.Config)
	if err != nil {
		return nil, err
	}
	db.SQLitePragmas = writerPragmas
	e := &eventsExporter{cfg: cfg, set: set, logger: set.Logger, tb: tb, db: db, datasets: datasetsJSON(), now: time.Now}
	if cfg.Server.HasValue() {
		e.authenticated = cfg.Server.Get().ServerConfig.Auth.HasValue()
		e.queryTimeout = cfg.Server.Get().QueryTimeout
	}
	return e, nil
}

func (e *eventsExporter) start(ctx context.Context, host component.Host) error {
	if !e.cfg.durableQueue() {
		e.logger.Warn("`sending_queue` is in memory and does not wait for the result: pages are acknowledged to the receiver before they are stored, and a crash loses them. Remove `sending_queue`, or set `sending_queue.storage` or `sending_queue.wait_for_result: true`.")
	}
	w, from, err := e.db.Start(ctx, e.logger, schema, 8, e.cfg.TimeoutConfig.Timeout, e.cfg.StartTimeout)
	if err != nil {
		return err
	}
	s := &store{dialect: e.db.Dialect, prefix: e.cfg.TablePrefix, w: w, r: w, q: newQueries(e.db.Dialect, e.cfg.TablePrefix)}
	if e.cfg.Driver == sqldb.DriverSQLite {
		if s.r, err = e.db.Open(readerConns, 0, readerPragmas...); err != nil {
			_ = w.Close()
			return e.db.Redact.Error(fmt.Errorf("%s: cannot open the %s: %w", metadata.Type, e.db.Target, err))
		}
	}
	e.mu.Lock()
	e.store = s
	e.mu.Unlock()
	if e.cfg.Server.HasValue() {
		if err := e.startServer(ctx, host, &e.cfg.Server.Get().ServerConfig); err != nil {
			return err
		}
	}
	e.stop = make(chan struct{})
	e.done.Add(1)
	go e.retentionLoop(e.stop)
	e.logger.Info("Event store ready", zap.String("database", e.db.Target), zap.String("table_prefix", e.cfg.TablePrefix),
		zap.Int64("schema_version", schema.Version()), zap.Int64("previous_schema_version", from))
	return nil
}

func (e *eventsExporter) startServer(ctx context.Context, host component.Host, sc *confighttp.ServerConfig) error {
	ln, err := sc.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("`server.endpoint` %s: %w", sc.NetAddr.Endpoint, err)
	}
	srv, err := sc.ToServer(ctx, host.GetExtensions(), e.set.TelemetrySettings, e.handler(),
		confighttp.WithErrorHandler(e.authError))
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("`server`: %w", err)
	}
	e.server, e.addr, e.serveErr = srv, ln.Addr().String(), make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else if err != nil {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
		e.serveErr <- err
	}()
	if !e.authenticated {
		e.logger.Warn("No `server.auth` configured: GET /events/raw and /events/normalized answer 403. Configure an authenticator extension (e.g. bearertokenauth) to enable them.")
	}
	e.logger.Info("Event query API listening", zap.String("endpoint", ln.Addr().String()), zap.Bool("event_routes_enabled", e.authenticated))
	return nil
}

// authError answers requests that confighttp's `auth` refused. The authenticator's message is logged,
// not returned: it may describe what was expected.
func (e *eventsExporter) authError(w http.ResponseWriter, r *http.Request, msg string, status int) {
	if status == http.StatusUnauthorized {
		e.logger.Debug("Request refused by the authenticator", zap.String("path", r.URL.Path), zap.String("error", msg))
		w.Header().Set("WWW-Authenticate", `Bearer realm="o365_events"`)
		writeError(w, status, "unauthorized: this route requires credentials accepted by the `server.auth` authenticator")
		return
	}
	writeError(w, status, msg)
}

func (e *eventsExporter) shutdown(ctx context.Context) error {
	var err error
	if e.server != nil {
		// Serve returns as soon as Shutdown begins; Shutdown waits for the requests under way.
		err = errors.Join(e.server.Shutdown(ctx), <-e.serveErr)
		e.server = nil
	}
	if e.stop != nil {
		close(e.stop)
		e.done.Wait()
		e.stop = nil
	}
	e.mu.Lock()
	s := e.store
	e.store = nil
	e.mu.Unlock()
	if s != nil {
		if s.r != s.w {
			err = errors.Join(err, s.r.Close())
		}
		err = errors.Join(err, s.w.Close())
	}
	e.tb.Shutdown()
	return e.db.Redact.Error(err)
}

func (e *eventsExporter) currentStore() *store {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.store
}

var errNotStarted = errors.New("o365_events: the exporter is not started (or already shut down)")

// push stores a batch and returns once every record is committed (or refused as older than max_age,
// or without a tenant). A database error is retryable: exporterhelper retries, and then the receiver
// does not commit the page, so nothing is lost; what was committed before is merged, never doubled.
func (e *eventsExporter) push(ctx context.Context, ld plog.Logs) error {
	now := e.now()
	notBefore := int64(math.MinInt64)
	if e.cfg.Retention.MaxAge > 0 {
		notBefore = now.Add(-e.cfg.Retention.MaxAge).UnixNano()
	}
	buf := jsonBufs.Get().(*[]byte)
	defer jsonBufs.Put(buf)
	rows, drops := rowsOf(ld, notBefore, now, buf)
	e.countDrops(ctx, reasonNoTenant, drops.noTenant)
	e.countDrops(ctx, reasonExpired, drops.expired)
	if len(rows) == 0 {
		return nil
	}
	s := e.currentStore()
	if s == nil {
		return errNotStarted
	}
	start := time.Now()
	res, err := s.write(ctx, rows)
	e.tb.O365EventsWriteDuration.Record(ctx, time.Since(start).Seconds())
	e.tb.O365EventsRecordsStored.Add(ctx, res.stored)
	e.tb.O365EventsRecordsRedelivered.Add(ctx, res.redelivered)
	if err != nil {
		return e.db.Redact.Error(fmt.Errorf("o365_events: storing %d records in the %s: %w", len(rows), e.db.Target, err))
	}
	return nil
}

func (e *eventsExporter) countDrops(ctx context.Context, reason string, n int64) {
	if n > 0 {
		e.tb.O365EventsRecordsDropped.Add(ctx, n, metric.WithAttributes(attribute.String("reason", reason)))
	}
}

package o365exportexporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/exporter"
	"go.uber.org/zap"
)

// Routes of the summary server.
const (
	SummaryPath = "/export/summary"
	SchemaPath  = "/export/schema/v1"
)

// summaryStore keeps the most recent documents (without events) of every tenant.
type summaryStore struct {
	mu      sync.Mutex
	max     int
	tenants map[tenantKey]map[int64][]byte // period start (Unix ns) → document
}

func newSummaryStore(maxPerTenant int) *summaryStore {
	return &summaryStore{max: maxPerTenant, tenants: map[tenantKey]map[int64][]byte{}}
}

func (s *summaryStore) put(key tenantKey, start time.Time, doc []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	docs := s.tenants[key]
	if docs == nil {
		docs = map[int64][]byte{}
		s.tenants[key] = docs
	}
	docs[start.UnixNano()] = doc
	for len(docs) > s.max {
		oldest := int64(0)
		first := true
		for st := range docs {
			if first || st < oldest {
				oldest, first = st, false
			}
		}
		delete(docs, oldest)
	}
}

// summaryResponse is the body of GET /export/summary.
type summaryResponse struct {
	ExportVersion int               `json:"export_version"`
	Documents     []json.RawMessage `json:"documents"`
}

// query returns, for the tenant whose id or name is tenant (every tenant when empty), the latest
// document, or with since every kept document whose period ends after since; tenants by label, then
// periods oldest first. found is false when a tenant was asked for and is not known.
func (s *summaryStore) query(tenant string, since time.Time, period time.Duration) (docs []json.RawMessage, found bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]tenantKey, 0, len(s.tenants))
	for k := range s.tenants {
		if tenant == "" || tenant == k.id || tenant == k.name {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].label()+"\x00"+keys[i].id < keys[j].label()+"\x00"+keys[j].id })
	docs = []json.RawMessage{}
	for _, k := range keys {
		starts := make([]int64, 0, len(s.tenants[k]))
		for st := range s.tenants[k] {
			starts = append(starts, st)
		}
		sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
		if since.IsZero() {
			if len(starts) > 0 {
				docs = append(docs, s.tenants[k][starts[len(starts)-1]])
			}
			continue
		}
		for _, st := range starts {
			if time.Unix(0, st).Add(period).After(since) {
				docs = append(docs, s.tenants[k][st])
			}
		}
	}
	return docs, tenant == "" || len(keys) > 0
}

// summaryServer serves the summary store (confighttp server).
type summaryServer struct {
	cfg    *SummaryServerConfig
	set    exporter.Settings
	store  *summaryStore
	period time.Duration
	server *http.Server
	addr   string // the address listened on (tests: a port picked by the system)
	done   chan struct{}
}

func newSummaryServer(cfg *SummaryServerConfig, set exporter.Settings, store *summaryStore, period time.Duration) *summaryServer {
	return &summaryServer{cfg: cfg, set: set, store: store, period: period}
}

func (s *summaryServer) start(ctx context.Context, host component.Host) error {
	ln, err := s.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("`summary_server.endpoint` %s: %w", s.cfg.ServerConfig.NetAddr.Endpoint, err)
	}
	srv, err := s.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), s.set.TelemetrySettings, s.handler())
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("`summary_server`: %w", err)
	}
	s.server = srv
	s.addr = ln.Addr().String()
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.set.Logger.Error("The summary server stopped", zap.Error(err))
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	s.set.Logger.Info("Serving the export summary", zap.String("endpoint", s.addr), zap.String("path", SummaryPath))
	return nil
}

func (s *summaryServer) shutdown(ctx context.Context) error {
	if s.server == nil {
		return nil
	}
	err := s.server.Shutdown(ctx)
	<-s.done
	return err
}

func (s *summaryServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(SummaryPath, s.handleSummary)
	mux.HandleFunc(SchemaPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "only GET is allowed")
			return
		}
		w.Header().Set("Content-Type", "application/schema+json")
		_, _ = w.Write(schemaV1)
	})
	return mux
}

func (s *summaryServer) handleSummary(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "only GET is allowed")
		return
	}
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "`since` must be an RFC 3339 time such as 2024-03-13T00:00:00Z, got "+fmt.Sprintf("%q", v))
			return
		}
		since = t
	}
	tenant := q.Get("tenant_id")
	docs, found := s.store.query(tenant, since, s.period)
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no export document for tenant %q (yet)", tenant))
		return
	}
	body, err := encode(summaryResponse{ExportVersion: ExportVersion, Documents: docs})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	body, _ := encode(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

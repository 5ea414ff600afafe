package o365eventsexporter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/internal/jsonenc"
)

// Values of the `reason`, `route` and `outcome` metric attributes (metadata.yaml).
const (
	reasonNoTenant   = "no_tenant"
	reasonExpired    = "expired"
	reasonMaxAge     = "max_age"
	reasonMaxRecords = "max_records"

	outcomeOK         = "ok"
	outcomeBadRequest = "bad_request"
	outcomeForbidden  = "forbidden"
	outcomeError      = "error"
)

// Query limits.
const (
	defaultLimit = 100
	maxLimit     = 1000
	maxTypeLen   = 256
)

// routeParams are the parameters each event route takes.
var routeParams = map[view][]string{
	viewRaw:        {"tenant_id", "dataset", "since", "until", "limit", "cursor"},
	viewNormalized: {"tenant_id", "type", "since", "until", "limit", "cursor"},
}

func (e *eventsExporter) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /datasets", e.handleDatasets)
	mux.HandleFunc("GET /events/raw", func(w http.ResponseWriter, r *http.Request) { e.handleEvents(w, r, viewRaw) })
	mux.HandleFunc("GET /events/normalized", func(w http.ResponseWriter, r *http.Request) { e.handleEvents(w, r, viewNormalized) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/datasets", "/events/raw", "/events/normalized":
			w.Header().Set("Allow", http.MethodGet)
			writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+"; use GET")
		default:
			writeError(w, http.StatusNotFound, "no such route: "+r.URL.Path+" (GET /datasets, /events/raw, /events/normalized)")
		}
	})
	return mux
}

func (e *eventsExporter) handleDatasets(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	writeBody(w, http.StatusOK, e.datasets)
	e.observeQuery(r.Context(), "datasets", outcomeOK, start)
}

func (e *eventsExporter) handleEvents(w http.ResponseWriter, r *http.Request, v view) {
	start := time.Now()
	route := "raw"
	if v == viewNormalized {
		route = "normalized"
	}
	outcome := outcomeOK
	defer func() { e.observeQuery(r.Context(), route, outcome, start) }()
	if !e.authenticated {
		outcome = outcomeForbidden
		writeError(w, http.StatusForbidden, "the event routes are disabled: configure `server.auth` with an authenticator extension (e.g. bearertokenauth); they serve users' sign-ins and are never open")
		return
	}
	q, err := parseQuery(r.URL.RawQuery, v)
	if err != nil {
		outcome = outcomeBadRequest
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s := e.currentStore()
	if s == nil {
		outcome = outcomeError
		writeError(w, http.StatusServiceUnavailable, "the event store is not started")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.queryTimeout)
	defer cancel()
	name, known, err := s.resolveTenant(ctx, q.tenant)
	if !known {
		name = q.tenant
	}
	var rows []result
	var next *position
	if err == nil && known {
		q.tenant = name
		rows, next, err = s.run(ctx, q)
	}
	if err != nil {
		outcome = outcomeError
		e.logger.Warn("Event query failed", zap.String("route", r.URL.Path), zap.Error(e.db.Redact.Error(err)))
		writeError(w, http.StatusServiceUnavailable, "the event store could not answer; try again")
		return
	}
	size := 256
	for i := range rows {
		size += len(rows[i].doc) + 256 // the record's fields besides its document, generously
	}
	writeBody(w, http.StatusOK, appendPage(make([]byte, 0, size), name, q.view, rows, next))
}

func (e *eventsExporter) observeQuery(ctx context.Context, route, outcome string, start time.Time) {
	e.tb.O365EventsQueryDuration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
		attribute.String("route", route), attribute.String("outcome", outcome)))
}

// parseQuery validates the parameters of an event route; each error names the parameter.
func parseQuery(raw string, v view) (*query, error) {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("the query string is malformed: %v", err)
	}
	allowed := routeParams[v]
	for _, k := range sortedKeys(values) {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("unknown parameter `%s`; this route takes %s", clip(k), strings.Join(allowed, ", "))
		}
		if len(values[k]) > 1 {
			return nil, fmt.Errorf("`%s` is given %d times; give it once", k, len(values[k]))
		}
	}
	q := &query{view: v, limit: defaultLimit}
	if q.tenant = values.Get("tenant_id"); q.tenant == "" {
		return nil, errors.New("`tenant_id` is required: the tenant's name (o365.tenant.name, e.g. contoso) or its Entra tenant id")
	}
	if d := values.Get("dataset"); d != "" {
		if !slices.Contains(storedDatasets, d) {
			return nil, fmt.Errorf("`dataset` must be one of %s, got %q", strings.Join(storedDatasets, ", "), clip(d))
		}
		q.dataset = d
	}
	if values.Has("type") {
		q.eventType = values.Get("type")
		if q.eventType == "" || len(q.eventType) > maxTypeLen {
			return nil, fmt.Errorf("`type` must be a normalized event type (o365.event.type, e.g. signin.failure) of 1 to %d characters", maxTypeLen)
		}
	}
	if q.since, q.hasSince, err = timeParam(values, "since"); err != nil {
		return nil, err
	}
	if q.until, q.hasUntil, err = timeParam(values, "until"); err != nil {
		return nil, err
	}
	if q.hasSince && q.hasUntil && q.until <= q.since {
		return nil, errors.New("`until` must be after `since`")
	}
	if values.Has("limit") {
		n, err := strconv.Atoi(values.Get("limit"))
		if err != nil || n < 1 || n > maxLimit {
			return nil, fmt.Errorf("`limit` must be an integer from 1 to %d, got %q", maxLimit, clip(values.Get("limit")))
		}
		q.limit = n
	}
	if values.Has("cursor") {
		p, err := parseCursor(values.Get("cursor"))
		if err != nil {
			return nil, fmt.Errorf("`cursor` is %v: pass the `next_cursor` of the previous page unchanged", err)
		}
		q.after = &p
	}
	return q, nil
}

func timeParam(values url.Values, key string) (int64, bool, error) {
	if !values.Has(key) {
		return 0, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, values.Get(key))
	if err != nil {
		return 0, false, fmt.Errorf("`%s` must be an RFC 3339 time such as 2026-05-04T10:00:00Z, got %q", key, clip(values.Get(key)))
	}
	return t.UnixNano(), true, nil
}

// clip bounds user input echoed in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// appendPage renders an answer: {"tenant_id", "records": [...], "next_cursor"}. Bodies and attributes
// are the stored JSON, verbatim.
func appendPage(b []byte, tenant string, v view, rows []result, next *position) []byte {
	b = append(b, `{"tenant_id":`...)
	b = jsonenc.AppendString(b, tenant)
	b = append(b, `,"records":[`...)
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"dataset":`...)
		b = jsonenc.AppendString(b, r.dataset)
		b = append(b, `,"record_id":`...)
		b = jsonenc.AppendString(b, r.recordID)
		if r.version != "" {
			b = append(b, `,"version":`...)
			b = jsonenc.AppendString(b, r.version)
		}
		b = append(b, `,"time":`...)
		b = jsonenc.AppendString(b, time.Unix(0, r.pos.time).UTC().Format(time.RFC3339Nano))
		if r.evtType != "" {
			b = append(b, `,"type":`...)
			b = jsonenc.AppendString(b, r.evtType)
		}
		if v == viewRaw {
			b = append(b, `,"body":`...)
		} else {
			b = append(b, `,"attributes":`...)
		}
		b = append(b, r.doc...)
		b = append(b, '}')
	}
	b = append(b, `],"next_cursor":`...)
	if next != nil {
		b = jsonenc.AppendString(b, next.cursor())
	} else {
		b = append(b, "null"...)
	}
	return append(b, "}\n"...)
}

// ErrorResponse is the body of every 4xx/5xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeBody(w, status, append(append(jsonenc.AppendString([]byte(`{"error":`), msg), '}'), '\n'))
}

// writeBody answers JSON that is never cached or sniffed: records are users' security data.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

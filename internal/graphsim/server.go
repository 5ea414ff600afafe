package graphsim

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Server is a running simulator.
type Server struct {
	cfg      Config
	anchor   time.Time
	tokens   *tokenIssuer
	cert     *generatedCert
	listener net.Listener
	http     *http.Server
	url      string

	tenants map[string]*tenantData        // by tenant id
	streams map[string]map[string]*stream // tenant id → dataset name → stream
	limiter *rateLimiter

	mu          sync.Mutex
	rng         *rand.Rand
	secrets     map[string]string // tenant|client → rotated secret
	roles       map[string][]string
	generation  map[string]int // tenant → token generation; RevokeTokens bumps it
	scripted    []Fault        // one-shot faults, consumed in order
	latency     time.Duration
	log         []RequestRecord
	tokenOutage atomic.Bool
	// foreign is the foreign host (nil until first needed); foreignLinks points nextLinks at it.
	foreign      *foreignHost
	foreignLinks atomic.Bool
	emptyPages   atomic.Int64 // empty_next pages served, numbering their nextLinks
	// feed is the Management Activity API's state (management.go), made on first use.
	feed     *activityFeeds
	feedOnce sync.Once

	stats struct {
		graphRequests, tokenRequests, tokensIssued, throttled, violations, faults atomic.Int64
	}
}

// RequestRecord is one Graph request as the simulator saw it.
type RequestRecord struct {
	At       time.Time
	TenantID string
	ClientID string
	// Dataset the request was routed to (for sign-ins, the kind its signInEventTypes clause selects).
	Dataset         string
	Family          string
	Path            string
	Query           string
	Status          int
	RetryAfter      time.Duration
	ClientRequestID string
	// Violation marks a request that arrived before a Retry-After given to its tenant had elapsed.
	Violation bool
	// Records is the number of records on a served page.
	Records int
}

// Stats summarises what the simulator served.
type Stats struct {
	GraphRequests, TokenRequests, TokensIssued int64
	// Throttled counts 429 answers caused by the enforced rate limits.
	Throttled int64
	// Violations counts requests that arrived before their Retry-After elapsed.
	Violations int64
	// Faults counts injected faults.
	Faults int64
}

const maxRequestLog = 100_000

// Start validates cfg, generates a certificate and serves HTTPS until Close.
func Start(cfg Config) (*Server, error) {
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	anchor := cfg.Anchor
	if anchor.IsZero() {
		anchor = time.Now()
	}
	anchor = anchor.UTC().Truncate(anchorUnit)
	tokens, err := newTokenIssuer(cfg.Cloud, cfg.TokenTTL)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	cert, err := generateCert(host)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{
		cfg:        cfg,
		anchor:     anchor,
		tokens:     tokens,
		cert:       cert,
		listener:   ln,
		url:        "https://" + ln.Addr().String(),
		tenants:    map[string]*tenantData{},
		streams:    map[string]map[string]*stream{},
		limiter:    newRateLimiter(),
		rng:        rand.New(rand.NewPCG(cfg.Seed, 0x6a09e667f3bcc908)),
		secrets:    map[string]string{},
		roles:      map[string][]string{},
		generation: map[string]int{},
		latency:    cfg.Latency,
	}
	for _, t := range cfg.Tenants {
		seed := mix(cfg.Seed, hashString(t.ID))
		td := newTenantData(t, seed)
		td.anchor = anchor
		s.tenants[t.ID] = td
		s.streams[t.ID] = map[string]*stream{}
		for _, def := range datasetDefs {
			if def.kind != kindStream {
				continue // snapshots are generated on first use
			}
			spec := t.Datasets[def.name] // zero spec: an empty stream that injected records can fill
			s.streams[t.ID][def.name] = newStream(def, spec, mix(seed, hashString(def.name)), anchor, td)
		}
	}
	for _, t := range cfg.Tenants {
		if err := s.injectScenarios(t); err != nil {
			ln.Close()
			return nil, err
		}
	}
	errorLog := cfg.ErrorLog
	if errorLog == nil {
		errorLog = log.New(io.Discard, "", 0)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.handleOpenIDConfiguration)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.handleToken)
	mux.HandleFunc("GET /msi/token", s.handleManagedIdentity)
	mux.HandleFunc("GET /{version}/{path...}", s.handleGraph)
	mux.HandleFunc("POST /api/v1.0/{tenant}/activity/feed/subscriptions/start", s.handleActivity("start"))
	mux.HandleFunc("GET /api/v1.0/{tenant}/activity/feed/subscriptions/list", s.handleActivity("list"))
	mux.HandleFunc("GET /api/v1.0/{tenant}/activity/feed/subscriptions/content", s.handleActivity("content"))
	mux.HandleFunc("GET /api/v1.0/{tenant}/activity/feed/audit/{id}", s.handleActivity("audit"))
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert.tls}, MinVersion: tls.VersionTLS12},
		ErrorLog:          errorLog,
	}
	go func() { _ = s.http.ServeTLS(ln, "", "") }()
	if cfg.ForeignNextLinks {
		if err := s.SetForeignNextLinks(true); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

// URL is the base URL for both Graph (append /v1.0) and the authority host.
func (s *Server) URL() string { return s.url }

// ManagedIdentityEndpoint is the App Service managed identity endpoint (IDENTITY_ENDPOINT) serving
// Config.ManagedIdentities.
func (s *Server) ManagedIdentityEndpoint() string { return s.url + "/msi/token" }

// Anchor separates historical from live records.
func (s *Server) Anchor() time.Time { return s.anchor }

// CACertPEM is the PEM of the self-signed certificate to trust.
func (s *Server) CACertPEM() []byte { return s.cert.pem }

// WriteCACert writes CACertPEM to path (for `tls.ca_file`).
func (s *Server) WriteCACert(path string) error { return os.WriteFile(path, s.cert.pem, 0o600) }

// Close stops serving.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.mu.Lock()
	f := s.foreign
	s.mu.Unlock()
	if f != nil {
		_ = f.server.Shutdown(ctx)
	}
	return s.http.Shutdown(ctx)
}

// Stats returns counters of what was served so far.
func (s *Server) Stats() Stats {
	return Stats{
		GraphRequests: s.stats.graphRequests.Load(),
		TokenRequests: s.stats.tokenRequests.Load(),
		TokensIssued:  s.stats.tokensIssued.Load(),
		Throttled:     s.stats.throttled.Load(),
		Violations:    s.stats.violations.Load(),
		Faults:        s.stats.faults.Load(),
	}
}

// Requests returns a copy of the Graph request log (the most recent 100k).
func (s *Server) Requests() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RequestRecord(nil), s.log...)
}

// IDs returns the ids of all records of tenantID's event stream dataset with their time field in
// [from, to], whether visible yet or not, in time order (synthetic records, then injected ones). A
// versioned item (security_alerts, security_incidents, risk_detections with DatasetSpec.Versions > 1) appears once per version
// in range; Keys tells the versions apart. Nil for an unknown tenant or dataset and for snapshot datasets
// (see Items).
func (s *Server) IDs(tenantID, dataset string, from, to time.Time) []string {
	st := s.stream(tenantID, dataset)
	if st == nil {
		return nil
	}
	return st.ids(from, to)
}

// Keys is IDs with each record's version: "<id>@<time field>", the time field exactly as the record
// carries it (e.g. an alert's lastUpdateDateTime with its 3 fractional digits). Keys are unique per record
// version: the identity a receiver deduplicates alerts and risk detections by.
func (s *Server) Keys(tenantID, dataset string, from, to time.Time) []string {
	st := s.stream(tenantID, dataset)
	if st == nil {
		return nil
	}
	return st.keys(from, to)
}

// Inject adds records (Graph JSON objects, which must carry `id` and the dataset's time property) to a
// tenant's event stream; they become visible at visibleAt (zero: at their own time).
func (s *Server) Inject(tenantID, dataset string, visibleAt time.Time, objects ...map[string]any) error {
	st := s.stream(tenantID, dataset)
	if st == nil {
		return fmt.Errorf("unknown tenant %q or event stream dataset %q", tenantID, dataset)
	}
	recs := make([]injectedRecord, 0, len(objects))
	for _, o := range objects {
		id, _ := o["id"].(string)
		ts, _ := o[st.def.timeField].(string)
		at, err := time.Parse(time.RFC3339Nano, ts)
		if id == "" || err != nil {
			return fmt.Errorf("injected %s record needs `id` and an RFC 3339 `%s`", dataset, st.def.timeField)
		}
		raw, err := json.Marshal(o)
		if err != nil {
			return err
		}
		va := visibleAt
		if va.IsZero() {
			va = at
		}
		rec := injectedRecord{at: at, visibleAt: va, id: id, ts: ts, raw: raw}
		for field := range st.def.altTimes {
			if v, ok := o[field].(string); ok {
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
					if rec.alt == nil {
						rec.alt = map[string]time.Time{}
					}
					rec.alt[field] = t
				}
			}
		}
		recs = append(recs, rec)
	}
	st.inject(recs)
	return nil
}

// SetItem adds obj (a Graph JSON object with a string `id`) to a snapshot dataset of the tenant
// (role_assignments, role_eligibility_schedules, conditional_access_policies, mfa_coverage), or replaces
// the item with the same id in place. For role assignments and eligibility schedules, `principal` and
// `roleDefinition` in obj are served only with $expand; without them, $expand resolves principalId and
// roleDefinitionId against the tenant's users and built-in roles (null when unknown). The change affects
// that dataset only.
func (s *Server) SetItem(tenantID, dataset string, obj map[string]any) error {
	td, def, err := s.snapshotOf(tenantID, dataset)
	if err != nil {
		return err
	}
	it, err := newSnapItem(def, obj)
	if err != nil {
		return err
	}
	td.snapshot(def).set(it)
	return nil
}

// RemoveItem removes the item with id from a snapshot dataset of the tenant.
func (s *Server) RemoveItem(tenantID, dataset, id string) error {
	td, def, err := s.snapshotOf(tenantID, dataset)
	if err != nil {
		return err
	}
	if !td.snapshot(def).remove(id) {
		return fmt.Errorf("%s of tenant %s has no item %q", dataset, tenantID, id)
	}
	return nil
}

// Items returns the ids of a snapshot dataset's items, in listing order (nil for an unknown tenant or
// a dataset that is not a snapshot).
func (s *Server) Items(tenantID, dataset string) []string {
	td, def, err := s.snapshotOf(tenantID, dataset)
	if err != nil {
		return nil
	}
	return td.snapshot(def).ids()
}

func (s *Server) snapshotOf(tenantID, dataset string) (*tenantData, *datasetDef, error) {
	td := s.tenants[tenantID]
	def := datasetsByName[dataset]
	if td == nil || def == nil || def.kind != kindSnapshot {
		return nil, nil, fmt.Errorf("unknown tenant %q or snapshot dataset %q", tenantID, dataset)
	}
	return td, def, nil
}

// FailNext makes the next Graph requests (matching f.Path) fail with f, once each, in order.
func (s *Server) FailNext(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripted = append(s.scripted, faults...)
}

// SetLatency changes the latency added to Graph responses.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// RotateSecret replaces an app's secret: the old one is rejected from now on.
func (s *Server) RotateSecret(tenantID, clientID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[tenantID+"|"+clientID] = secret
}

// SetRoles replaces the application permissions granted to an app or a managed identity (as admin
// consent would); tokens issued from now on carry them.
func (s *Server) SetRoles(tenantID, clientID string, roles []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[tenantID+"|"+clientID] = roles
}

// RevokeTokens rejects every token of the tenant issued until now.
func (s *Server) RevokeTokens(tenantID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.generation[tenantID]++
}

func (s *Server) tokenGeneration(tenantID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.generation[tenantID]
}

// SetTokenOutage makes the token endpoint answer 503 while on.
func (s *Server) SetTokenOutage(on bool) { s.tokenOutage.Store(on) }

func (s *Server) stream(tenantID, dataset string) *stream {
	if m := s.streams[tenantID]; m != nil {
		return m[dataset]
	}
	return nil
}

func (s *Server) tenantByIDOrName(v string) *tenantData {
	if t, ok := s.tenants[v]; ok {
		return t
	}
	for _, t := range s.tenants {
		if strings.EqualFold(t.domain, v) {
			return t
		}
	}
	return nil
}

func (td *tenantData) app(clientID string) *App {
	for i := range td.cfg.Apps {
		if td.cfg.Apps[i].ClientID == clientID {
			return &td.cfg.Apps[i]
		}
	}
	return nil
}

func (s *Server) appSecret(td *tenantData, app *App) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec, ok := s.secrets[td.cfg.ID+"|"+app.ClientID]; ok {
		return sec
	}
	return app.Secret
}

// appRoles are the roles granted to clientID in tenantID: as SetRoles last set them, else configured.
func (s *Server) appRoles(tenantID, clientID string, configured []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.roles[tenantID+"|"+clientID]; ok {
		return r
	}
	return configured
}

// resolveDataset finds the dataset a request addresses: by path, and for sign-ins by the kind a beta
// signInEventTypes clause selects (v1.0 serves interactive sign-ins only).
func resolveDataset(version, path string, q url.Values) *datasetDef {
	defs := datasetsByPath["/"+strings.ToLower(path)]
	if len(defs) == 0 {
		return nil
	}
	if version == "beta" {
		if et := sniffEventType(q.Get("$filter")); et != "" {
			for _, d := range defs {
				if strings.EqualFold(d.eventType, et) {
					return d
				}
			}
		}
	}
	for _, d := range defs {
		if !d.betaOnly {
			return d
		}
	}
	return nil
}

// handleGraph serves GET /{version}/{path...} for the collections in datasetDefs.
//
// Order of checks, as Graph's gateway and services apply them: the route (400), the access token (401),
// the rate limit of the dataset's family (429), an injected status fault (the gateway or an overloaded
// service fails before the request reaches authorization), latency, the app's permission (403), the
// tenant's licence (403), the query (400), then the page — which an injected truncate/reset fault
// damages.
func (s *Server) handleGraph(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.stats.graphRequests.Add(1)
	rec := RequestRecord{At: now, Path: r.URL.Path, Query: r.URL.RawQuery, ClientRequestID: r.Header.Get("client-request-id")}
	requestID := uuid.NewString()
	// Graph echoes the client's client-request-id, or repeats request-id when none was sent.
	clientRequestID := rec.ClientRequestID
	if clientRequestID == "" {
		clientRequestID = requestID
	}
	w.Header().Set("request-id", requestID)
	w.Header().Set("client-request-id", clientRequestID)
	fail := func(status int, code, msg string) {
		rec.Status = status
		writeGraphError(w, status, code, msg, requestID, clientRequestID)
	}
	defer func() { s.record(rec) }()

	version := r.PathValue("version")
	def := resolveDataset(version, r.PathValue("path"), r.URL.Query())
	if (version != "v1.0" && version != "beta") || def == nil {
		fail(http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+r.PathValue("path")+"'.")
		return
	}
	rec.Family, rec.Dataset = def.family, def.name

	claims, err := s.authenticate(r, now)
	if err != nil {
		fail(http.StatusUnauthorized, "InvalidAuthenticationToken", err.Error())
		return
	}
	rec.TenantID, rec.ClientID = claims.TenantID, claims.AppID
	td := s.tenants[claims.TenantID]

	if ra, throttled, violation := s.limiter.admit(s.cfg.RateLimits, claims.TenantID, claims.AppID, def.family, now); throttled || violation {
		rec.Violation = violation
		if violation {
			s.stats.violations.Add(1)
		}
		if throttled {
			s.stats.throttled.Add(1)
			rec.RetryAfter = ra
			if !s.cfg.RateLimits.Families[def.family].OmitRetryAfter {
				w.Header().Set("Retry-After", s.retryAfter(now, ra))
			}
			w.Header().Set("x-ms-throttle-scope", "Tenant_Application/ReadWrite/"+claims.AppID+"/"+claims.TenantID)
			fail(http.StatusTooManyRequests, "TooManyRequests", "Too many requests.")
			return
		}
	}

	f, scripted, faulty := s.pickFault(r.URL.Path)
	if faulty && f.Kind == "status" {
		s.stats.faults.Add(1)
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", s.retryAfter(now, f.RetryAfter))
			rec.RetryAfter = f.RetryAfter
			if f.Status == http.StatusTooManyRequests || f.Status == http.StatusServiceUnavailable {
				s.limiter.block(claims.TenantID, def.family, now.Add(f.RetryAfter))
			}
		}
		fail(f.Status, faultCode(f.Status), http.StatusText(f.Status)+".")
		return
	}
	// A truncate/reset fault damages a 200: a request refused below gives a scripted one back.
	refused := func() {
		if faulty && scripted {
			s.requeue(f)
		}
	}

	if !s.sleep(r.Context()) {
		rec.Status = 499
		refused()
		return
	}
	if !def.hasRole(claims.Roles) {
		refused()
		fail(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	if def.premium && td.cfg.Unlicensed {
		refused()
		fail(http.StatusForbidden, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "Neither tenant is B2C or tenant doesn't have premium license")
		return
	}
	body, n, err := s.pageBody(r, def, td, now)
	rec.Records = n
	if err != nil {
		refused()
		fail(http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	rec.Status = http.StatusOK
	if faulty && (f.Kind == "truncate" || f.Kind == "reset") { // a 200 whose body stops half-way
		s.stats.faults.Add(1)
		rec.Records = 0
		if f.Kind == "reset" { // the promised length never arrives: the client sees the connection drop
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:len(body)/2])
		if f.Kind == "reset" {
			panic(http.ErrAbortHandler) // the deferred record still runs
		}
		return
	}
	if faulty { // a complete 200 whose page is wrong: invalid_json, no_value, empty_next, next_loop, ...
		s.stats.faults.Add(1)
		body, rec.Records = s.damagePage(f, r, body, n)
	}
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// pageBody renders the page a request asks for, and says how many records it holds; an error is the
// 400 to answer.
func (s *Server) pageBody(r *http.Request, def *datasetDef, td *tenantData, now time.Time) ([]byte, int, error) {
	version := r.PathValue("version")
	beta := version == "beta"
	lq, err := parseQuery(r.URL.Query(), def, s.cfg.MaxPageSize, beta)
	if err != nil {
		return nil, 0, err
	}
	if s.cfg.IgnoreOrderBy {
		lq.desc = true
	}
	if s.cfg.PageCap > 0 && lq.top > s.cfg.PageCap {
		lq.top = s.cfg.PageCap
	}
	count := 0
	var buf bytes.Buffer
	var next string // the $skiptoken of the next page, "" = none
	var items func()
	context := def.context
	switch def.kind {
	case kindStream:
		st := s.streams[td.cfg.ID][def.name]
		records, cur := st.query(lq, now, beta)
		count = len(records)
		if s.cfg.ShufflePages {
			rng := rand.New(rand.NewPCG(s.cfg.Seed, hashString(r.URL.RawQuery)))
			rng.Shuffle(len(records), func(i, j int) { records[i], records[j] = records[j], records[i] })
		}
		buf.Grow(64 + len(records)*2600)
		if cur != nil && !st.omitsNextLink() {
			next = cur.token()
		}
		context = expandedContext(def, lq.expand)
		trim := slices.Contains(def.expandable, "alerts") && !slices.Contains(lq.expand, "alerts")
		items = func() {
			for i, rec := range records {
				if i > 0 {
					buf.WriteByte(',')
				}
				if trim {
					rec = withoutAlerts(rec)
				}
				buf.Write(rec)
			}
		}
	case kindSnapshot:
		page, cur := td.snapshot(def).page(lq.snap, lq.top)
		count = len(page)
		if cur != nil {
			next = cur.token()
		}
		context = expandedContext(def, lq.expand)
		items = func() {
			for i, it := range page {
				if i > 0 {
					buf.WriteByte(',')
				}
				td.render(&buf, it, lq.expand)
			}
		}
	}
	buf.WriteString(`{"@odata.context":`)
	writeJSONString(&buf, s.url+"/"+version+"/$metadata#"+context)
	nextLink := ""
	if next != "" {
		q := r.URL.Query()
		q.Set("$skiptoken", next)
		nextLink = s.linkBase() + r.URL.Path + "?" + q.Encode()
	}
	if nextLink != "" && s.cfg.NextLinkFirst {
		buf.WriteString(`,"@odata.nextLink":`)
		writeJSONString(&buf, nextLink)
	}
	buf.WriteString(`,"value":[`)
	items()
	buf.WriteByte(']')
	if nextLink != "" && !s.cfg.NextLinkFirst {
		buf.WriteString(`,"@odata.nextLink":`)
		writeJSONString(&buf, nextLink)
	}
	buf.WriteByte('}')
	return buf.Bytes(), count, nil
}

// damagePage turns the page a request would get into the page of a fault kind that answers a complete
// 200, and says how many records the damaged page holds:
//
//   - invalid_json: the page with a stray comma opening its "value" array (no JSON parser accepts it);
//   - no_value: the page without its "value" member (@odata.context and @odata.nextLink kept);
//   - empty_next: an empty page whose @odata.nextLink continues the same query — the request's own URL
//     plus a parameter Graph ignores (simEmptyPage=<n>, distinct for each such page), so following it
//     returns exactly what this request would have returned;
//   - next_loop: the real page, whose @odata.nextLink points back at the request itself;
//   - no_next: the real page without its @odata.nextLink;
//   - drop_items: the real page without its last ceil(f.Share × n) items.
func (s *Server) damagePage(f Fault, r *http.Request, body []byte, n int) ([]byte, int) {
	kind := f.Kind
	var page map[string]json.RawMessage
	if kind != "invalid_json" && json.Unmarshal(body, &page) != nil {
		return body, n // not a page (cannot happen: pageBody renders valid JSON)
	}
	link := func(u string) json.RawMessage {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(u)
		return bytes.TrimSpace(buf.Bytes())
	}
	switch kind {
	case "invalid_json":
		return bytes.Replace(body, []byte(`"value":[`), []byte(`"value":[,`), 1), 0
	case "no_value":
		delete(page, "value")
		n = 0
	case "empty_next":
		q := r.URL.Query()
		q.Set("simEmptyPage", strconv.FormatInt(s.emptyPages.Add(1), 10))
		page["value"] = json.RawMessage("[]")
		page["@odata.nextLink"] = link(s.linkBase() + r.URL.Path + "?" + q.Encode())
		n = 0
	case "next_loop":
		page["@odata.nextLink"] = link(s.linkBase() + r.URL.RequestURI())
	case "no_next":
		delete(page, "@odata.nextLink")
	case "drop_items":
		var items []json.RawMessage
		if json.Unmarshal(page["value"], &items) == nil {
			items = items[:len(items)-int(math.Ceil(f.Share*float64(len(items))))]
			page["value"], _ = json.Marshal(items)
			n = len(items)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(page)
	return bytes.TrimSpace(buf.Bytes()), n
}

func (s *Server) authenticate(r *http.Request, now time.Time) (*accessClaims, error) {
	return s.authenticateFor(r, now, s.isGraphResource)
}

// authenticateFor verifies the request's access token, which must be for a resource audience accepts.
func (s *Server) authenticateFor(r *http.Request, now time.Time, audience func(string) bool) (*accessClaims, error) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return nil, errors.New("Access token is empty.") //nolint:staticcheck // Graph's own message
	}
	claims, err := s.tokens.verify(raw, now)
	if err != nil {
		return nil, err
	}
	if !audience(claims.Audience) {
		return nil, errors.New("Access token validation failure. Invalid audience.") //nolint:staticcheck // Graph's own message
	}
	if s.tenants[claims.TenantID] == nil {
		return nil, errors.New("Invalid JWT token. Tenant not found.") //nolint:staticcheck // Graph's own message
	}
	if claims.Generation != s.tokenGeneration(claims.TenantID) {
		return nil, errTokenExpired
	}
	return claims, nil
}

// pickFault takes the next scripted fault for path, or draws a random one; scripted says which.
func (s *Server) pickFault(path string) (Fault, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.scripted {
		if f.Path == "" || strings.Contains(path, f.Path) {
			if f.After > 0 { // this request passes unharmed by it
				s.scripted[i].After--
				break
			}
			s.scripted = append(s.scripted[:i], s.scripted[i+1:]...)
			return f, true, true
		}
	}
	for _, f := range s.cfg.Faults {
		if (f.Path == "" || strings.Contains(path, f.Path)) && s.rng.Float64() < f.Probability {
			return f, false, true
		}
	}
	return Fault{}, false, false
}

// requeue puts back a scripted fault that did not apply, first in line.
func (s *Server) requeue(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripted = append([]Fault{f}, s.scripted...)
}

func (s *Server) sleep(ctx context.Context) bool {
	s.mu.Lock()
	d := s.latency
	s.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) record(rec RequestRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.log) >= maxRequestLog {
		s.log = s.log[len(s.log)-maxRequestLog/2:]
	}
	s.log = append(s.log, rec)
}

func faultCode(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusServiceUnavailable:
		return "serviceNotAvailable"
	case http.StatusGatewayTimeout:
		return "gatewayTimeout"
	default:
		return "generalException"
	}
}

// retryAfter renders a Retry-After of d from now: seconds, fractional when needed ("2.128"), as Graph
// sometimes does; or with RetryAfterHTTPDate the HTTP-date form, rounded up to the whole second so that
// a client waiting until that date has waited at least d.
func (s *Server) retryAfter(now time.Time, d time.Duration) string {
	if s.cfg.RetryAfterHTTPDate {
		end := now.Add(d)
		if t := end.Truncate(time.Second); t.Before(end) {
			end = t.Add(time.Second)
		}
		return end.UTC().Format(http.TimeFormat)
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

func writeGraphError(w http.ResponseWriter, status int, code, message, requestID, clientRequestID string) {
	inner := map[string]any{
		"date":       time.Now().UTC().Format("2006-01-02T15:04:05"),
		"request-id": requestID,
	}
	if clientRequestID != "" {
		inner["client-request-id"] = clientRequestID
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": message, "innerError": inner}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s)
	buf.Write(b)
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

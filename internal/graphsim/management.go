package graphsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// The Office 365 Management Activity API (manage.office.com), served on the simulator's own URL under
// /api/v1.0/{tenant}/activity/feed, with the shapes of its reference
// (learn.microsoft.com/office/office-365-management-api/office-365-management-activity-api-reference):
//
//	POST subscriptions/start?contentType=…   starts (or re-enables) the tenant's subscription
//	GET  subscriptions/list                  the tenant's subscriptions
//	GET  subscriptions/content?contentType=…&startTime=…&endTime=…   blobs by contentCreated, paged
//	                                         with a NextPageUri header; ≤ 24 h, start ≤ 7 days back
//	GET  audit/{contentId}                   a blob: a JSON array of audit records
//
// Its tokens are for the cloud's Management API resource, not Graph's; they carry only the
// ActivityFeed.* roles of the app, as Entra ID puts in a token only the roles of its audience.

// managementResources are the Management API's resource per cloud (the reference's "Activity API
// operations"; Microsoft documents none for China).
var managementResources = map[string]string{
	"public":   "https://manage.office.com",
	"usgov":    "https://manage.office365.us",
	"usgovdod": "https://manage.protection.apps.mil",
}

// isManagementResource reports whether resource names this cloud's Management Activity API.
func (s *Server) isManagementResource(resource string) bool {
	want, ok := managementResources[s.cfg.Cloud]
	return ok && strings.EqualFold(strings.TrimRight(resource, "/"), want)
}

// ManagementResource is the Management API resource of the simulated cloud ("" where none exists).
func (s *Server) ManagementResource() string { return managementResources[s.cfg.Cloud] }

// rolesFor keeps the roles that belong to a token's audience: ActivityFeed.* for the Management API,
// the others for Graph.
func (s *Server) rolesFor(resource string, roles []string) []string {
	mgmt := s.isManagementResource(resource)
	var out []string
	for _, r := range roles {
		if strings.HasPrefix(r, "ActivityFeed.") == mgmt {
			out = append(out, r)
		}
	}
	return out
}

// AuditBlob is one content blob of the activity feed.
type AuditBlob struct {
	ContentType string
	// Created is contentCreated, when the blob became available: what listings filter on.
	Created time.Time
	// ListedFrom delays the blob's appearance in listings (a blob listed late, behind its
	// contentCreated); zero = from Created.
	ListedFrom time.Time
	// Expiration is contentExpiration; zero = Created + 7 days. Fetching an expired blob fails (AF20051).
	Expiration time.Time
	Records    []map[string]any
}

type storedBlob struct {
	AuditBlob
	id string
}

type activityFeeds struct {
	mu       sync.Mutex
	subs     map[string]map[string]string // tenant → content type → status
	blobs    map[string][]*storedBlob     // tenant → blobs, in insertion order
	pageSize int
	fetches  map[string]int // contentId → times fetched
	// auditingOff: tenants whose unified audit logging is turned off
	auditingOff map[string]bool
}

func (s *Server) feeds() *activityFeeds {
	s.feedOnce.Do(func() {
		s.feed = &activityFeeds{subs: map[string]map[string]string{}, blobs: map[string][]*storedBlob{}, pageSize: 100, fetches: map[string]int{},
			auditingOff: map[string]bool{}}
		for _, t := range s.cfg.Tenants {
			s.feed.auditingOff[t.ID] = t.AuditingDisabled
		}
	})
	return s.feed
}

// AddAuditBlob adds a blob to a tenant's feed and returns its contentId.
func (s *Server) AddAuditBlob(tenantID string, b AuditBlob) string {
	f := s.feeds()
	f.mu.Lock()
	defer f.mu.Unlock()
	if b.Expiration.IsZero() {
		b.Expiration = b.Created.Add(7 * 24 * time.Hour)
	}
	id := strings.ReplaceAll(uuid.NewString(), "-", "") + "$" + strconv.FormatInt(b.Created.UnixMilli(), 10)
	f.blobs[tenantID] = append(f.blobs[tenantID], &storedBlob{AuditBlob: b, id: id})
	return id
}

// AuditBlobs returns a tenant's blobs, in the order they were added (what a client reads by listing
// and fetching them all).
func (s *Server) AuditBlobs(tenantID string) []AuditBlob {
	f := s.feeds()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]AuditBlob, 0, len(f.blobs[tenantID]))
	for _, b := range f.blobs[tenantID] {
		out = append(out, b.AuditBlob)
	}
	return out
}

// SetAuditingDisabled turns a tenant's unified audit logging off (or on again): while off, starting a
// subscription answers what the API answers then (startRefusedAuditingOff).
func (s *Server) SetAuditingDisabled(tenantID string, off bool) {
	f := s.feeds()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auditingOff[tenantID] = off
}

// startRefusedAuditingOff is the API's answer to subscriptions/start for a tenant whose unified audit
// logging is off: 400 with no documented error code, a DataServiceException "Tenant <id> does not
// exist" whose text is split between the error's code (cut inside the AppId) and its message, as the
// reports show it (MicrosoftDocs/office-365-management-api#89, microsoft/powerapps-tools#239).
func startRefusedAuditingOff(tenantID, contentType, appID, publisher string) (code, message string) {
	code = fmt.Sprintf("StartSubscription [CorrId=%s][TenantId=%s,ContentType=%s,ApplicationId=%s,PublisherId=%s][AppId",
		uuid.NewString(), tenantID, contentType, appID, publisher)
	message = appID[min(1, len(appID)):] + "] failed. Exception: Microsoft.Office.Compliance.Audit.DataServiceException: Tenant " + tenantID +
		" does not exist.\r\n   at Microsoft.Office.Compliance.Audit.API.AzureManager.<GetSubscriptionTableClientForTenantAsync>d__52.MoveNext()"
	return code, message
}

// SetSubscription sets the status of a tenant's subscription ("enabled", "disabled"; "" removes it).
func (s *Server) SetSubscription(tenantID, contentType, status string) {
	f := s.feeds()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs[tenantID] == nil {
		f.subs[tenantID] = map[string]string{}
	}
	if status == "" {
		delete(f.subs[tenantID], contentType)
		return
	}
	f.subs[tenantID][contentType] = status
}

// Subscription returns the status of a tenant's subscription ("" = none).
func (s *Server) Subscription(tenantID, contentType string) string {
	f := s.feeds()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subs[tenantID][contentType]
}

// SetActivityPageSize sets how many blobs a content listing returns before its NextPageUri.
func (s *Server) SetActivityPageSize(n int) {
	f := s.feeds()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pageSize = max(1, n)
}

// BlobFetches says how often a blob was fetched.
func (s *Server) BlobFetches(contentID string) int {
	f := s.feeds()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetches[contentID]
}

var contentTypes = []string{"Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All"}

// handleActivity serves one Management Activity API operation.
func (s *Server) handleActivity(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		s.stats.graphRequests.Add(1)
		rec := RequestRecord{At: now, Path: r.URL.Path, Query: r.URL.RawQuery, Family: "management_activity", Dataset: r.URL.Query().Get("contentType")}
		defer func() { s.record(rec) }()
		fail := func(status int, code, msg string) {
			rec.Status = status
			writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
		}
		claims, err := s.authenticateFor(r, now, s.isManagementResource)
		if err != nil {
			fail(http.StatusUnauthorized, "AF10001", err.Error())
			return
		}
		rec.TenantID, rec.ClientID = claims.TenantID, claims.AppID
		if tenant := r.PathValue("tenant"); !strings.EqualFold(tenant, claims.TenantID) {
			fail(http.StatusForbidden, "AF20010", fmt.Sprintf("The tenant ID passed in the URL (%s) does not match the tenant ID passed in the access token (%s).", tenant, claims.TenantID))
			return
		}
		if !s.sleep(r.Context()) {
			return
		}
		if f, _, faulty := s.pickFault(r.URL.Path); faulty && f.Kind == "status" {
			s.stats.faults.Add(1)
			if f.RetryAfter > 0 {
				w.Header().Set("Retry-After", s.retryAfter(now, f.RetryAfter))
				rec.RetryAfter = f.RetryAfter
			}
			if f.Status == http.StatusTooManyRequests {
				s.stats.throttled.Add(1)
				fail(f.Status, "AF429", "Too many requests. Method="+r.Method+", PublisherId="+r.URL.Query().Get("PublisherIdentifier"))
				return
			}
			fail(f.Status, "AF50000", "An internal error occurred. Retry the request.")
			return
		}
		ct := r.URL.Query().Get("contentType")
		if op != "list" && op != "audit" && !slices.Contains(contentTypes, ct) {
			fail(http.StatusBadRequest, "AF20020", "The specified content type is not valid.")
			return
		}
		need := "ActivityFeed.Read"
		if ct == "DLP.All" {
			need = "ActivityFeed.ReadDlp"
		}
		if op != "list" && !slices.Contains(claims.Roles, need) && !(need == "ActivityFeed.Read" && slices.Contains(claims.Roles, "ActivityFeed.ReadDlp")) {
			fail(http.StatusForbidden, "AF10001", fmt.Sprintf("The permission set (%s) sent in the request did not include the expected permission %s.", strings.Join(claims.Roles, " "), need))
			return
		}
		feeds := s.feeds()
		feeds.mu.Lock()
		defer feeds.mu.Unlock()
		switch op {
		case "start":
			if feeds.auditingOff[claims.TenantID] {
				publisher := r.URL.Query().Get("PublisherIdentifier")
				if publisher == "" {
					publisher = claims.TenantID
				}
				code, msg := startRefusedAuditingOff(claims.TenantID, ct, claims.AppID, publisher)
				fail(http.StatusBadRequest, code, msg)
				return
			}
			if feeds.subs[claims.TenantID] == nil {
				feeds.subs[claims.TenantID] = map[string]string{}
			}
			feeds.subs[claims.TenantID][ct] = "enabled"
			rec.Status = http.StatusOK
			writeJSON(w, http.StatusOK, map[string]any{"contentType": ct, "status": "enabled", "webhook": nil})
		case "list":
			out := []map[string]any{}
			for _, c := range contentTypes {
				if st, ok := feeds.subs[claims.TenantID][c]; ok {
					out = append(out, map[string]any{"contentType": c, "status": st, "webhook": nil})
				}
			}
			rec.Status = http.StatusOK
			writeJSON(w, http.StatusOK, out)
		case "content":
			s.listContent(w, r, feeds, claims.TenantID, ct, now, &rec, fail)
		case "audit":
			id := r.PathValue("id")
			for _, b := range feeds.blobs[claims.TenantID] {
				if b.id != id {
					continue
				}
				if !now.Before(b.Expiration) {
					fail(http.StatusBadRequest, "AF20051", "Content requested with the key "+id+" has already expired. Content older than 7 days cannot be retrieved.")
					return
				}
				feeds.fetches[id]++
				rec.Status, rec.Records = http.StatusOK, len(b.Records)
				writeJSON(w, http.StatusOK, b.Records)
				return
			}
			fail(http.StatusNotFound, "AF20050", "The specified content ("+id+") does not exist.")
		}
	}
}

// activityBase is the base of the links listings write: the simulator's URL, or in ForeignNextLinks
// mode the foreign host's (a NextPageUri or contentUri a client must not send its token to).
func (s *Server) activityBase() string {
	if s.foreignLinks.Load() {
		return s.ForeignURL()
	}
	return s.url
}

// activityTimeLayouts are the forms startTime and endTime accept.
var activityTimeLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

func parseActivityTime(v string) (time.Time, bool) {
	for _, l := range activityTimeLayouts {
		if t, err := time.ParseInLocation(l, strings.TrimSuffix(v, "Z"), time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// listContent answers subscriptions/content: the blobs with startTime <= contentCreated < endTime that
// are listed by now, in contentCreated order, pageSize at a time.
func (s *Server) listContent(w http.ResponseWriter, r *http.Request, feeds *activityFeeds, tenantID, ct string, now time.Time,
	rec *RequestRecord, fail func(int, string, string),
) {
	switch feeds.subs[tenantID][ct] {
	case "enabled":
	case "":
		fail(http.StatusBadRequest, "AF20022", "No subscription found for the specified content type.")
		return
	default:
		fail(http.StatusBadRequest, "AF20023", "The subscription was disabled by a tenant admin.")
		return
	}
	q := r.URL.Query()
	start, okStart := parseActivityTime(q.Get("startTime"))
	end, okEnd := parseActivityTime(q.Get("endTime"))
	if q.Get("startTime") == "" && q.Get("endTime") == "" {
		start, end, okStart, okEnd = now.Add(-24*time.Hour), now, true, true
	}
	if !okStart || !okEnd || end.Sub(start) > 24*time.Hour || !end.After(start) || start.Before(now.Add(-7*24*time.Hour)) {
		fail(http.StatusBadRequest, "AF20030", "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time no more than 7 days in the past.")
		return
	}
	var match []*storedBlob
	for _, b := range feeds.blobs[tenantID] {
		listed := b.ListedFrom
		if listed.IsZero() {
			listed = b.Created
		}
		if b.ContentType == ct && !b.Created.Before(start) && b.Created.Before(end) && !now.Before(listed) {
			match = append(match, b)
		}
	}
	slices.SortStableFunc(match, func(a, b *storedBlob) int { return a.Created.Compare(b.Created) })
	skip, _ := strconv.Atoi(q.Get("nextPage"))
	if skip > len(match) {
		fail(http.StatusBadRequest, "AF20031", "Invalid nextPage Input: "+q.Get("nextPage")+".")
		return
	}
	page := match[skip:]
	if len(page) > feeds.pageSize {
		page = page[:feeds.pageSize]
		next := url.Values{}
		next.Set("contentType", ct)
		next.Set("startTime", q.Get("startTime"))
		next.Set("endTime", q.Get("endTime"))
		next.Set("nextPage", strconv.Itoa(skip+len(page)))
		w.Header().Set("NextPageUri", s.activityBase()+"/api/v1.0/"+tenantID+"/activity/feed/subscriptions/content?"+next.Encode())
	}
	out := make([]map[string]any, 0, len(page))
	for _, b := range page {
		out = append(out, map[string]any{
			"contentType":       b.ContentType,
			"contentId":         b.id,
			"contentUri":        s.activityBase() + "/api/v1.0/" + tenantID + "/activity/feed/audit/" + b.id,
			"contentCreated":    b.Created.UTC().Format("2006-01-02T15:04:05.000Z"),
			"contentExpiration": b.Expiration.UTC().Format("2006-01-02T15:04:05.000Z"),
		})
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(out)
	rec.Status, rec.Records = http.StatusOK, len(out)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

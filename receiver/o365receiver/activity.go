package o365receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver/internal/checkpoint"
)

// activityStream collects one Office 365 Management Activity API content type of one tenant. Each poll
// starts the tenant's subscription when it is absent, lists the content blobs that became available in
// [position − lookback, now] (windows of at most 24 h, no further back than the API's 7 days, following
// NextPageUri), and for each blob not collected yet fetches its audit records, hands the new ones (by
// record Id) to the next consumer and commits the blob's contentId and the records' ids once the
// consumer has accepted them. Blobs are listed by the time they became available, not by their
// records' time, so the position is that availability time; records inside a blob may be of any age.
type activityStream struct {
	*task
	cp         *checkpoint.Stream
	subscribed bool // the subscription was seen enabled or started by this receiver
	// auditingOff: the last start of the subscription was refused because the tenant's auditing is off
	// (read by the readiness probe, which runs beside the polls).
	auditingOff atomic.Bool
}

// activityTimeLayout is the form the API takes startTime and endTime in (UTC, to the second).
const activityTimeLayout = "2006-01-02T15:04:05"

// activityWindow is the longest window one content listing may cover (the API answers AF20030 beyond).
const activityWindow = 24 * time.Hour

// retentionMargin keeps a listing's start inside the API's 7 days despite clock skew.
const retentionMargin = time.Minute

func newActivityStream(t *task) *activityStream {
	s := &activityStream{task: t}
	t.poll = s.poll
	t.probe = s.probe
	t.reset = func() { s.cp, s.subscribed = nil, false }
	t.bindCheckpoint(&s.cp)
	return s
}

// feedURL is the URL of an operation of the tenant's activity feed.
func (s *activityStream) feedURL(op string, q url.Values) string {
	u := s.graphURL + "/" + s.src.APIVersion + "/" + s.tenant.TenantID + s.src.Path + "/" + op
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// blobRef is one entry of a content listing.
type blobRef struct {
	ContentType       string `json:"contentType"`
	ContentID         string `json:"contentId"`
	ContentURI        string `json:"contentUri"`
	ContentCreated    string `json:"contentCreated"`
	ContentExpiration string `json:"contentExpiration"`
}

func (s *activityStream) poll(ctx context.Context) (int, error) {
	cp, err := s.loadCheckpoint(ctx, s.cp)
	if cp != nil {
		s.cp = cp
	}
	if err != nil {
		return 0, err
	}
	if !s.subscribed {
		if err := s.ensureSubscription(ctx); err != nil {
			return 0, err
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	s.cp.SetStart(s.startTime(now))
	from := s.cp.QueryStart(s.lookback)
	if floor := now.Add(-s.ds.Retention + retentionMargin); from.Before(floor) {
		if pos := s.cp.Position(); !pos.IsZero() && pos.Before(floor) {
			s.gap(fmt.Sprintf("content that became available between %s and %s is past the API's %s and can no longer be listed (the receiver was stopped or failing that long)",
				pos.Format(time.RFC3339), floor.Format(time.RFC3339), s.ds.Retention))
		}
		from = floor
	}
	emitted := 0
	for start := from; start.Before(now); {
		end := start.Add(activityWindow)
		if end.After(now) {
			end = now
		}
		blobs, err := s.list(ctx, start, end)
		if err != nil {
			return emitted, err
		}
		n, err := s.collectAll(ctx, blobs, now)
		emitted += n
		if err != nil {
			return emitted, err
		}
		start = end
	}
	// Every blob listed in the window has been collected: the position moves to the listing's end.
	s.cp.CompleteRead(now)
	return emitted, s.commitTo(ctx, s.cp, nil, time.Time{}, time.Time{})
}

// list returns the blobs that became available in [start, end), following NextPageUri to the end.
func (s *activityStream) list(ctx context.Context, start, end time.Time) ([]blobRef, error) {
	q := url.Values{}
	q.Set("contentType", s.ds.ContentType)
	q.Set("startTime", start.UTC().Format(activityTimeLayout))
	q.Set("endTime", end.UTC().Format(activityTimeLayout))
	link := s.feedURL("subscriptions/content", q)
	var out []blobRef
	followed := map[string]bool{}
	for link != "" {
		var page []blobRef
		var hdr http.Header
		var info graph.ResponseInfo
		req := s.graphRequest(link)
		req.Header, req.Info = &hdr, &info
		err := s.get(ctx, req, func(body []byte) error {
			page = nil
			return json.Unmarshal(body, &page)
		})
		if err != nil {
			if hasCode(err, "AF20022") { // the subscription went away (stopped by an admin): start it again
				s.subscribed = false
			}
			return out, err
		}
		s.r.tb.O365PagesFetched.Add(ctx, 1, s.attrs)
		out = append(out, page...)
		link = hdr.Get("NextPageUri") // a link elsewhere than the Management API's host is refused by the client
		if followed[link] {
			return out, pagingLoop(info, "content listing")
		}
		followed[link] = link != ""
	}
	return out, nil
}

// blobFetchers is how many blobs are fetched at once (and held, fetched, until their turn to be emitted).
// Each fetch is one request of the tenant's Management API budget, which paces them; fetching several
// at once hides the API's latency, which alone would keep a catch-up of 7 days' blobs (one request each)
// far below the budget.
const blobFetchers = 4

// blobWork is what collecting one listed blob takes: nothing (collected already, or listed twice), a gap
// (expired before it could be fetched), or a fetch.
type blobWork int

const (
	blobSkip blobWork = iota
	blobExpired
	blobFetch
)

// fetchedBlob is a fetched blob's records, decoded into a batch of the stream's resource.
type fetchedBlob struct {
	logs plog.Logs
	lrs  plog.LogRecordSlice
	err  error
}

// collectAll collects the listed blobs not collected yet: fetched blobFetchers at a time, emitted and
// committed one after the other in listing order, so the checkpoint is written by one goroutine and a
// failure stops at the blob that failed.
func (s *activityStream) collectAll(ctx context.Context, blobs []blobRef, now time.Time) (int, error) {
	work := make([]blobWork, len(blobs))
	listed := make(map[string]bool, len(blobs))
	for i, b := range blobs {
		switch {
		case listed[b.ContentID] || s.cp.Seen(checkpoint.KeyOf("blob", b.ContentID)):
			work[i] = blobSkip
		case expiredAt(b, now):
			work[i] = blobExpired
		default:
			work[i] = blobFetch
		}
		listed[b.ContentID] = true
	}
	emitted := 0
	err := fetchInOrder(ctx, len(blobs), blobFetchers,
		func(ctx context.Context, i int) fetchedBlob {
			if work[i] != blobFetch {
				return fetchedBlob{}
			}
			return s.fetch(ctx, blobs[i])
		},
		func(i int, f fetchedBlob) error {
			var n int
			var err error
			switch work[i] {
			case blobExpired:
				err = s.expired(ctx, blobs[i], now, "expired before it could be fetched")
			case blobFetch:
				n, err = s.emit(ctx, blobs[i], f, now)
			}
			emitted += n
			return err
		})
	return emitted, err
}

func expiredAt(b blobRef, now time.Time) bool {
	exp, err := time.Parse(time.RFC3339Nano, b.ContentExpiration)
	return err == nil && !now.Before(exp)
}

// createdOf is when the blob became available, which times its keys in the checkpoint (now when the
// listing gave none: its keys are kept a full lookback).
func createdOf(b blobRef, now time.Time) time.Time {
	if created, err := time.Parse(time.RFC3339Nano, b.ContentCreated); err == nil {
		return created
	}
	return now
}

// expired reports a blob that can no longer be fetched as a gap, and commits it so that it is not tried
// again.
func (s *activityStream) expired(ctx context.Context, b blobRef, now time.Time, why string) error {
	s.gap(fmt.Sprintf("blob %s (available since %s, expiring %s) %s; its records are lost", b.ContentID, b.ContentCreated, b.ContentExpiration, why))
	commitCtx, cancel := finishing(ctx)
	defer cancel()
	return s.commitTo(commitCtx, s.cp, []checkpoint.Key{checkpoint.KeyOf("blob", b.ContentID)}, createdOf(b, now), time.Time{})
}

// fetch gets one blob: a bare JSON array of records, decoded as the value of a page by the decoder that
// keeps the API's field order and integer types, so that each body is the record verbatim. It touches
// nothing of the stream but its client: fetches run beside each other and beside emit.
func (s *activityStream) fetch(ctx context.Context, b blobRef) fetchedBlob {
	logs, lrs := s.newBatch()
	err := s.get(ctx, s.graphRequest(b.ContentURI), func(body []byte) error {
		lrs.RemoveIf(func(plog.LogRecord) bool { return true }) // a retried fetch starts from scratch
		page := make([]byte, 0, len(body)+len(`{"value":}`))
		page = append(append(append(page, `{"value":`...), body...), '}')
		_, err := graph.FastDecoder{}.Decode(page, func() pcommon.Map { return lrs.AppendEmpty().Body().SetEmptyMap() })
		return err
	})
	if err == nil {
		s.r.tb.O365PagesFetched.Add(ctx, 1, s.attrs)
	}
	return fetchedBlob{logs: logs, lrs: lrs, err: err}
}

// emit hands a fetched blob's new records to the next consumer and commits them with the blob; a blob
// that expired while waiting to be fetched (AF20051) is a gap.
func (s *activityStream) emit(ctx context.Context, b blobRef, f fetchedBlob, now time.Time) (int, error) {
	switch {
	case hasCode(f.err, "AF20051"):
		return 0, s.expired(ctx, b, now, "expired while waiting to be fetched")
	case f.err != nil:
		return 0, f.err
	}
	lrs := f.lrs
	observed := pcommon.NewTimestampFromTime(time.Now())
	keys := make([]checkpoint.Key, 0, lrs.Len()+1)
	onPage := make(map[checkpoint.Key]bool, lrs.Len())
	duplicates := 0
	lrs.RemoveIf(func(lr plog.LogRecord) bool {
		body := lr.Body().Map()
		id := stringField(body, "Id")
		key := checkpoint.KeyOf(id)
		if id == "" {
			key = checkpoint.KeyOf(contentString(body))
		}
		if onPage[key] || s.cp.Seen(key) { // a record also carried by another blob
			duplicates++
			return true
		}
		onPage[key] = true
		keys = append(keys, key)
		lr.SetEventName(s.ds.EventName)
		lr.SetObservedTimestamp(observed)
		if at, ok := auditTime(stringField(body, s.ds.EventTimeField)); ok {
			lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
		}
		lr.Attributes().PutStr(AttrRecordID, id)
		return false
	})
	if duplicates > 0 {
		s.r.tb.O365RecordsDuplicate.Add(ctx, int64(duplicates), s.attrs)
	}
	n := lrs.Len()
	if n > 0 {
		if err := s.deliver(ctx, f.logs, n); err != nil {
			return 0, err
		}
	}
	// The consumer has the records: commit them with the blob, even if shutdown began meanwhile.
	commitCtx, cancel := finishing(ctx)
	defer cancel()
	return n, s.commitTo(commitCtx, s.cp, append(keys, checkpoint.KeyOf("blob", b.ContentID)), createdOf(b, now), time.Time{})
}

// gap reports content the stream could not collect: a warning, and in the status for readiness.
func (s *activityStream) gap(what string) {
	s.logger().Warn("Audit content was not collected: "+what, zap.String("content_type", s.ds.ContentType))
	s.update(func(st *StreamStatus) {
		st.Gaps++
		st.LastGap, st.LastGapAt = what, time.Now()
	})
}

// subscription is an entry of subscriptions/list.
type subscription struct {
	ContentType string `json:"contentType"`
	Status      string `json:"status"`
}

// subscriptionStatus asks the API for the status of the tenant's subscription to the content type
// ("" = none).
func (s *activityStream) subscriptionStatus(ctx context.Context) (string, error) {
	var subs []subscription
	err := s.get(ctx, s.graphRequest(s.feedURL("subscriptions/list", nil)), func(body []byte) error {
		subs = nil
		return json.Unmarshal(body, &subs)
	})
	if err != nil {
		return "", err
	}
	for _, sub := range subs {
		if sub.ContentType == s.ds.ContentType {
			return sub.Status, nil
		}
	}
	return "", nil
}

// ensureSubscription starts the tenant's subscription to the content type unless it is enabled.
func (s *activityStream) ensureSubscription(ctx context.Context) error {
	status, err := s.subscriptionStatus(ctx)
	if err != nil {
		return err
	}
	if strings.EqualFold(status, "enabled") {
		s.subscribed = true
		return nil
	}
	q := url.Values{}
	q.Set("contentType", s.ds.ContentType)
	req := s.graphRequest(s.feedURL("subscriptions/start", q))
	req.Method = http.MethodPost
	err = s.get(ctx, req, func([]byte) error { return nil })
	s.auditingOff.Store(errors.Is(err, o365status.ErrAuditingDisabled))
	if s.auditingOff.Load() {
		return err
	}
	var ge *graph.Error
	if errors.As(err, &ge) && (ge.Kind == graph.KindPermission || ge.Kind == graph.KindAuth || ge.Code == "AF20023") {
		wrapped := *ge
		wrapped.Message = fmt.Sprintf("the tenant's subscription to %s is %s and this app may not start it (%s): grant it %s with admin consent, or have an admin start the subscription",
			s.ds.ContentType, orNone(status), ge.Message, s.ds.Permission)
		return &wrapped
	}
	if err != nil {
		return err
	}
	s.logger().Info("Started the tenant's subscription to the content type; Microsoft makes the first content available up to 12 h later",
		zap.String("content_type", s.ds.ContentType), zap.String("previous_status", orNone(status)))
	s.subscribed = true
	return nil
}

// tenantMissing is what subscriptions/start answers, with 400 and no documented error code, for a
// tenant whose unified audit logging is off: a DataServiceException "Tenant <id> does not exist",
// split across the error's code and message (reported in MicrosoftDocs/office-365-management-api#89,
// microsoft/powerapps-tools#239 and #1161, counteractive/o365beat#58; the API's FAQ: "Office 365
// unified auditing must be enabled for your organization to pull records via the Management Activity
// API"). A wrong tenant id is refused earlier, by the token endpoint or with AF20010–AF20013.
var tenantMissing = regexp.MustCompile(`Tenant [0-9A-Fa-f-]+ does not exist`)

// get is the stream's request: a refusal for disabled auditing becomes an error of its own kind that
// says what to do (o365status.ErrorAuditingDisabled), wrapping the API's answer.
func (s *activityStream) get(ctx context.Context, req graph.Request, fn func([]byte) error) error {
	err := s.client.Get(ctx, req, fn)
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Status != http.StatusBadRequest || !tenantMissing.MatchString(ge.Code+ge.Message) {
		return err
	}
	return &auditingDisabledError{ge: ge, msg: fmt.Sprintf("unified audit logging is turned off for the tenant, so the Management Activity API has no %s content for it "+
		"(HTTP %d %q, client-request-id %s). Turn on auditing in Microsoft Purview (Audit: \"Start recording user and admin activity\") or in Exchange Online PowerShell "+
		"(Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true); the change takes up to 60 minutes, and the first content comes up to 12 h after the subscription starts",
		s.ds.ContentType, ge.Status, tenantMissing.FindString(ge.Code+ge.Message), ge.ClientReqID)}
}

// auditingDisabledError says what to do, without the API's stack trace; it unwraps to
// o365status.ErrAuditingDisabled and to the API's answer (its status, code and request ids for the log).
type auditingDisabledError struct {
	msg string
	ge  *graph.Error
}

func (e *auditingDisabledError) Error() string { return e.msg }
func (e *auditingDisabledError) Unwrap() []error {
	return []error{o365status.ErrAuditingDisabled, e.ge}
}

// probe checks, within the tenant's budget, that the subscription is enabled (for readiness).
func (s *activityStream) probe(ctx context.Context) error {
	status, err := s.subscriptionStatus(ctx)
	if err != nil {
		return err
	}
	if !strings.EqualFold(status, "enabled") && s.auditingOff.Load() {
		return fmt.Errorf("%w: the tenant's subscription to %s is %s, and its last start was refused because unified audit logging is turned off "+
			"(turn it on: Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true)", o365status.ErrAuditingDisabled, s.ds.ContentType, orNone(status))
	}
	if !strings.EqualFold(status, "enabled") {
		return &graph.Error{Kind: graph.KindBadRequest, Code: "AF20022", Message: fmt.Sprintf(
			"the tenant's subscription to %s is %s: the receiver starts it on its next poll, if the app may (%s)", s.ds.ContentType, orNone(status), s.ds.Permission)}
	}
	return nil
}

func orNone(status string) string {
	if status == "" {
		return "not started"
	}
	return status
}

// hasCode reports whether err is a failed request that answered the given error code.
func hasCode(err error, code string) bool {
	var ge *graph.Error
	return errors.As(err, &ge) && ge.Code == code
}

// auditTime reads CreationTime: UTC, written without a zone ("2015-06-29T20:03:19").
func auditTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

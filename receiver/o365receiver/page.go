package o365receiver

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/o365attr"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver/internal/metadata"
)

const (
	attrTenant  = attribute.Key("tenant")
	attrDataset = attribute.Key("dataset")
	attrKind    = attribute.Key("kind")
	attrSource  = attribute.Key("source")

	// AttrRecordID is the log record attribute holding the Graph object's id.
	AttrRecordID = o365attr.RecordID
	// AttrRecordKind names the collection of multi-source datasets (sign-in kind, role assignment kind).
	AttrRecordKind = o365attr.RecordKind
)

// fetchedPage is one page as fetched: validated and indexed (its body kept, no parse tree) until its
// turn comes to be emitted, when its records are copied into pdata.
type fetchedPage struct {
	parsed  *graph.Page
	fetched time.Time
	info    graph.ResponseInfo // status and request ids of the response
	// span is what the page's records say about the dataset's time field (zero without one).
	span graph.TimeSpan
	// firstID is the id of the page's first record: a page served again in place of the next one (a
	// $skip ignored) starts with the same record.
	firstID string
}

// sourceURL is the source's collection URL.
func (t *task) sourceURL() string { return t.graphURL + "/" + t.src.APIVersion + t.src.Path }

// fetch GETs and parses one page.
func (t *task) fetch(ctx context.Context, link string) (*fetchedPage, error) {
	page := &fetchedPage{}
	req := t.graphRequest(link)
	req.Info = &page.info
	err := t.client.Get(ctx, req, func(body []byte) error {
		parsed, err := graph.FastDecoder{}.Parse(body) // keeps its own copy: the client recycles body
		page.parsed = parsed
		return err
	})
	if err != nil {
		return nil, err
	}
	if t.ds.TimeField != "" {
		page.span = page.parsed.TimeSpan(t.ds.TimeField)
	}
	if page.parsed.Len() > 0 {
		page.firstID = page.parsed.StringField(0, "id")
	}
	page.fetched = time.Now()
	t.r.tb.O365PagesFetched.Add(ctx, 1, t.attrs)
	return page, nil
}

// shutdownGrace bounds how long the page in hand may still take, once shutdown began, to be delivered
// and committed.
const shutdownGrace = 10 * time.Second

// finishing returns a context for work that must not be abandoned half-way when ctx ends (the receiver
// shutting down, or a configuration reload): delivering the page in hand — the next consumer may
// already have passed it on, so abandoning the call would emit it again after the restart — and
// committing a page the consumer accepted. It ends shutdownGrace after ctx, or when cancelled.
func finishing(ctx context.Context) (context.Context, context.CancelFunc) {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var grace *time.Timer
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		grace = time.AfterFunc(shutdownGrace, cancel)
	})
	return fctx, func() {
		stop()
		mu.Lock()
		if grace != nil {
			grace.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// pagingLoop is the error of a poll whose paging returned a nextLink it had already followed: reported
// with the status and request ids of the response that carried the repeated link.
func pagingLoop(via graph.ResponseInfo, what string) error {
	return &graph.Error{Kind: graph.KindTransient, Status: via.Status, RequestID: via.RequestID, ClientReqID: via.ClientRequestID,
		Message: "Graph returned a nextLink already followed in this " + what + " (a paging loop)"}
}

// records copies the page's records into a new batch of the task's resource and scope.
func (t *task) records(page *fetchedPage) (plog.Logs, plog.LogRecordSlice, error) {
	logs, records := t.newBatch()
	err := page.parsed.Emit(func() pcommon.Map { return records.AppendEmpty().Body().SetEmptyMap() })
	return logs, records, err
}

// newBatch is an empty Logs with the task's resource and scope, and its record slice.
func (t *task) newBatch() (plog.Logs, plog.LogRecordSlice) {
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	t.resource.CopyTo(rl.Resource())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	sl.Scope().SetVersion(t.r.set.BuildInfo.Version)
	return logs, sl.LogRecords()
}

// deliver hands a batch to the next consumer until it is accepted or permanently rejected (dropped and
// counted). Retryable errors are retried with backoff for as long as the receiver runs: the batch is
// never committed, so it is never lost. A call in progress when the receiver shuts down is not cut
// short (see finishing): the next consumer may already have passed the batch on.
func (t *task) deliver(ctx context.Context, logs plog.Logs, n int) error {
	bo := graph.NewBackOff(t.r.cfg.RetryOnFailure)
	callCtx, cancel := finishing(ctx)
	defer cancel()
	began := time.Now()
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil { // shutting down: no new attempt
			return ctx.Err()
		}
		if !t.mayDeliver() {
			return errNotLeased
		}
		obsCtx := t.r.obs.StartLogsOp(callCtx)
		err := t.r.next.ConsumeLogs(obsCtx, logs)
		t.r.obs.EndLogsOp(obsCtx, "json", n, err)
		switch {
		case err == nil:
			t.r.tb.O365RecordsEmitted.Add(ctx, int64(n), t.attrs)
			if attempt > 1 {
				t.logger().Info("The next consumer accepted the records it had refused; collection continues",
					zap.Int("records", n), zap.Int("attempts", attempt), zap.Duration("refused_for", time.Since(began).Round(time.Millisecond)))
			}
			return nil
		case allPermanent(err):
			t.r.tb.O365RecordsDropped.Add(ctx, int64(n), t.attrs)
			t.logger().Error("The next consumer rejected records permanently; they are dropped", zap.Int("records", n), zap.Error(err))
			return nil
		}
		if consumererror.IsPermanent(err) { // some pipelines rejected it, others will take it later
			t.r.tb.O365RecordsRedelivered.Add(ctx, int64(n), t.attrs)
		}
		wait := bo.NextBackOff()
		if attempt == 1 { // once per page: a long refusal does not flood the log
			t.logger().Warn("The next consumer refused records; retrying until it accepts them, without advancing the position",
				zap.Int("records", n), zap.Error(err))
		}
		t.logger().Debug("The next consumer refused records; retrying", zap.Int("records", n), zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

func stringField(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

// contentString renders a map deterministically (keys in Graph's order, which is stable per object).
func contentString(m pcommon.Map) string {
	var b strings.Builder
	m.Range(func(k string, v pcommon.Value) bool {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v.AsString())
		b.WriteByte(';')
		return true
	})
	return b.String()
}

package o365receiver

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver/internal/checkpoint"
)

// graphTimeLayout writes filter literals at Graph's 100 ns resolution.
const graphTimeLayout = "2006-01-02T15:04:05.0000000Z"

// eventStream collects one time-ordered Graph collection of one tenant: each poll reads
// [watermark − lookback, now] on the dataset's time field, drops records already emitted, hands the
// rest to the next consumer and commits them (dedup keys, watermark) to storage only once the
// consumer has accepted them.
//
// Where Graph orders by time, the window is read in spans fetched concurrently: when a page comes back
// full, the rest of its span is split into spans about one page long (judged by the time the page
// covered), which other requests fetch while earlier pages are emitted — so a long window on a slow
// Graph still fills the request budget, and pages are emitted and committed in time order.
type eventStream struct {
	*task
	cp *checkpoint.Stream // loaded by the first poll
	// pageCap is the largest page Graph returned with a nextLink but fewer records than $top: its own
	// page size, where it caps pages below the $top asked (neither is documented either way).
	pageCap atomic.Int64
}

func newEventStream(t *task) *eventStream {
	s := &eventStream{task: t}
	t.poll = s.poll
	t.reset = func() { s.cp = nil }
	t.bindCheckpoint(&s.cp)
	return s
}

// bindCheckpoint lets the task move the stream's checkpoint (*cp, once loaded) to another storage
// client and flush what it could not commit yet.
func (t *task) bindCheckpoint(cp **checkpoint.Stream) {
	t.stateKey = checkpoint.StateKey(t.checkpointPrefix())
	t.overdue = func(stored []byte, now time.Time) bool {
		pos, err := checkpoint.StoredPosition(stored)
		return err == nil && pos.Before(now.Add(-t.interval))
	}
	t.rebind = func(c storage.Client) {
		if *cp != nil {
			(*cp).UseClient(c)
		}
	}
	t.flush = func(ctx context.Context) error {
		if *cp == nil {
			return nil
		}
		return (*cp).Flush(ctx)
	}
}

// span is a part of a poll's window read with one request: a time range, or a nextLink continuing
// one. Once fetched it holds its page, and the spans that read what the page did not cover.
type span struct {
	from, to time.Time
	link     string
	via      graph.ResponseInfo // the response whose nextLink link is
	// skip pages through one instant (from == to) with $skip, for a full page of records that share one
	// time and came without a nextLink; prevFirst is the first record id of the instant's previous page.
	skip      int
	prevFirst string

	started, done bool
	ahead         bool // started ahead of the head: holds a token of scheduler.ahead until emitted
	page          *fetchedPage
	err           error
	rest          []*span
}

// maxSplit bounds the spans one full page's remainder is cut into: enough to keep the requests of a
// slow Graph in flight, few enough that a misjudged density (a dense page before a sparse stretch)
// costs at most a few nearly empty requests.
const maxSplit = 8

func (s *eventStream) poll(ctx context.Context) (int, error) {
	cp, err := s.loadCheckpoint(ctx, s.cp)
	if cp != nil {
		s.cp = cp // kept even when its flush failed: it holds what was accepted but not written yet
	}
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC().Truncate(100 * time.Nanosecond)
	s.cp.SetStart(s.startTime(now))
	from := s.cp.QueryStart(s.lookback)
	progress := newProgress(s, from, now)

	held := 0 // tokens of the receiver's pages fetched ahead (scheduler.ahead), one per span not the head
	defer func() { s.r.sched.returnAhead(held) }()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	done := make(chan *span)
	spans := []*span{{from: from, to: now}}
	inflight, ready := 0, 0
	maxAhead := s.r.cfg.MaxConcurrentRequests + 4 // fetched pages waiting for their turn, bounded
	// A new record older than the position the poll began at was not visible to the reads that covered
	// its time: it arrived late, by at least the difference.
	q := query{ordered: s.ds.OrderBy, behind: s.cp.Position()}
	emitted := 0
	followed := map[string]bool{} // nextLinks, to stop a paging loop
	for len(spans) > 0 {
		// Start spans not started yet, in order: the head always (pages are emitted from it, so it may
		// not wait behind pages fetched ahead), then the last one — the far remainder of the window, whose
		// page, when it comes back full, splits it into the next spans — then the others.
		for i, sp := range startOrder(spans) {
			if inflight >= s.r.cfg.MaxConcurrentRequests || (i > 0 && inflight+ready >= maxAhead) {
				break
			}
			if !sp.started {
				if sp.link != "" && followed[sp.link] {
					return emitted, pagingLoop(sp.via, "poll")
				}
				if i > 0 {
					if !s.r.sched.takeAhead() {
						break // other polls hold the fan-out: this one reads its head meanwhile
					}
					sp.ahead = true
					held++
				}
				followed[sp.link] = sp.link != ""
				sp.started = true
				inflight++
				wg.Go(func() {
					s.fetchSpan(ctx, sp)
					select {
					case done <- sp:
					case <-ctx.Done():
						if sp.page != nil {
							sp.page.parsed.Release()
						}
					}
				})
			}
		}
		if head := spans[0]; head.done {
			spans, ready = spans[1:], ready-1
			if head.ahead {
				s.r.sched.returnAhead(1)
				held--
			}
			if head.err != nil {
				return emitted, head.err
			}
			n, err := s.emit(ctx, head.page, &q)
			emitted += n
			if err != nil {
				return emitted, err
			}
			progress.report(q.last, emitted)
			continue
		}
		select {
		case sp := <-done:
			sp.done, inflight, ready = true, inflight-1, ready+1
			spans = insertRest(spans, sp)
		case <-ctx.Done():
			return emitted, ctx.Err()
		}
	}
	// Every record of the window has been read: the position moves to the query's end (even when the
	// window was empty), and an unordered dataset's watermark to its newest record.
	s.cp.CompleteRead(now)
	if err := s.commit(ctx, nil, time.Time{}, q.newest); err != nil {
		return emitted, err
	}
	progress.finish(emitted)
	return emitted, nil
}

// loadCheckpoint returns the stream's checkpoint — cp, or loaded from storage when cp is nil — with a
// commit that failed earlier written first.
func (t *task) loadCheckpoint(ctx context.Context, cp *checkpoint.Stream) (*checkpoint.Stream, error) {
	if cp == nil {
		loaded, err := checkpoint.Load(ctx, t.store, t.checkpointPrefix())
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errStorage, err)
		}
		cp = loaded
		st := cp.State()
		if st.Start.IsZero() {
			t.logger().Info("No stored position for the stream: collecting from `initial_lookback` ago")
		} else {
			t.logger().Info("Resuming the stream from its stored position", zap.Time("position", cp.Position()),
				zap.Time("watermark", st.Watermark), zap.Time("start", st.Start), zap.Int("dedup_keys", cp.SeenCount()))
		}
		t.update(func(st *StreamStatus) { st.Watermark = cp.Position() })
	}
	if err := cp.Flush(ctx); err != nil {
		return cp, fmt.Errorf("%w: %w", errStorage, err)
	}
	return cp, nil
}

// startOrder lists spans in the order to start them: head, last, then the rest in time order.
func startOrder(spans []*span) []*span {
	if len(spans) < 3 {
		return spans
	}
	out := make([]*span, 0, len(spans))
	out = append(out, spans[0], spans[len(spans)-1])
	return append(out, spans[1:len(spans)-1]...)
}

// insertRest puts what is left of sp right after it, keeping time order. A single time span left over
// (a page that overflowed) is merged into the following span when that one has not started: one
// request instead of a nearly empty page.
func insertRest(spans []*span, sp *span) []*span {
	for i, x := range spans {
		if x != sp {
			continue
		}
		if len(sp.rest) == 1 && sp.rest[0].plain() && i+1 < len(spans) {
			if next := spans[i+1]; !next.started && next.plain() && next.from.Equal(sp.rest[0].to) {
				next.from = sp.rest[0].from
				return spans
			}
		}
		return append(spans[:i+1], append(append([]*span(nil), sp.rest...), spans[i+1:]...)...)
	}
	return spans
}

// plain: a time range read from its start, which may be merged with its neighbour.
func (sp *span) plain() bool { return sp.link == "" && sp.skip == 0 }

// tick is the resolution of Graph's time fields (7 fractional digits): the instant just before or after
// another, for a range that excludes it without relying on `lt` / `gt`, which the reports APIs do not
// document.
const tick = 100 * time.Nanosecond

// fetchSpan reads the first page of sp and works out what of sp is left to read. Graph's order is
// asked for ($orderby) but only relied on where the page shows it.
func (s *eventStream) fetchSpan(ctx context.Context, sp *span) {
	top := s.pageSize()
	link := sp.link
	if link == "" {
		link = s.listURL(sp.from, sp.to, top, sp.skip)
	}
	sp.page, sp.err = s.fetch(ctx, link)
	if sp.err != nil {
		return
	}
	pg := sp.page.parsed
	full := pg.Len() >= top
	capped := s.capped(pg.Len(), top, pg.NextLink() != "")
	ts := sp.page.span
	perPage := ts.Newest.Sub(ts.Oldest)
	switch {
	case sp.skip > 0 && sp.page.firstID != "" && sp.page.firstID == sp.prevFirst:
		sp.err = &graph.Error{Kind: graph.KindBadRequest, Status: sp.page.info.Status, RequestID: sp.page.info.RequestID,
			ClientReqID: sp.page.info.ClientRequestID,
			Message:     fmt.Sprintf("Graph ignored $skip while paging %d+ records that share the time %s; they cannot be read completely", sp.skip, sp.from.Format(time.RFC3339Nano))}
	case s.ds.OrderBy && full && sp.plain() && ts.Ascending && perPage > 0:
		// The page is in time order, so it holds the oldest records of its span, and what is left is
		// after its newest: spans a little shorter than the time the page covered hold a little less
		// than a page each, so they come back in one request (a denser span splits again).
		sp.rest = splitRange(ts.Newest, sp.to, perPage*fillTarget/100)
	case pg.NextLink() != "":
		sp.rest = []*span{{link: pg.NextURL(link), from: sp.from, to: sp.to, via: sp.page.info}}
	case s.ds.PageByTime && (full || capped):
		// Graph may end a full page of alerts without a nextLink (elastic/integrations#20234): continue
		// by time, past what the page covered.
		sp.rest = s.restByTime(sp, ts, pg.Len())
	}
}

// capped says whether a page of n records short of $top may still have been cut at Graph's own page
// size: it holds as many as the largest page Graph returned short of $top yet not the last (a nextLink
// followed it). Only a page without a nextLink needs the answer.
func (s *eventStream) capped(n, top int, hasNext bool) bool {
	if hasNext && n > 0 && n < top {
		for c := s.pageCap.Load(); int64(n) > c && !s.pageCap.CompareAndSwap(c, int64(n)); c = s.pageCap.Load() {
		}
	}
	c := s.pageCap.Load()
	return c > 0 && int64(n) >= c
}

// restByTime is what is left of sp after a full page without a nextLink: the rest of its range beyond
// the page when the page is in either time order, both halves of the range when it is in none (any
// order then still completes), and, for a page whose records all share one time, the rest of that
// instant with $skip, then the range on both sides of it.
func (s *eventStream) restByTime(sp *span, ts graph.TimeSpan, n int) []*span {
	switch {
	case ts.Newest.Equal(ts.Oldest):
		at := ts.Oldest
		rest := []*span{{from: at, to: at, skip: sp.skip + n, prevFirst: sp.page.firstID}}
		if sp.from.Before(at) {
			rest = append([]*span{{from: sp.from, to: at.Add(-tick)}}, rest...)
		}
		if at.Before(sp.to) {
			rest = append(rest, &span{from: at.Add(tick), to: sp.to})
		}
		return rest
	case ts.Descending && !ts.Oldest.Before(sp.from):
		return []*span{{from: sp.from, to: ts.Oldest}} // newest first, Graph's documented order
	case ts.Ascending && !ts.Newest.After(sp.to):
		return []*span{{from: ts.Newest, to: sp.to}}
	}
	mid := sp.from.Add(sp.to.Sub(sp.from) / 2).Truncate(tick)
	if !mid.After(sp.from) {
		mid = sp.from.Add(tick)
	}
	return []*span{{from: sp.from, to: mid}, {from: mid, to: sp.to}}
}

// fillTarget is the share of a page (in %) that a span split off a full page aims to hold: below 100,
// so that a span of the same density rarely spills a few records onto a second page (and when it does,
// the spill joins the next span if that has not started).
const fillTarget = 98

// splitRange cuts [from, to] into consecutive spans of step — at most maxSplit, the last one taking
// whatever is left (it splits again when its page comes back full).
func splitRange(from, to time.Time, step time.Duration) []*span {
	var out []*span
	for len(out) < maxSplit-1 && step > 0 && from.Add(step).Before(to) {
		out = append(out, &span{from: from, to: from.Add(step)})
		from = from.Add(step)
	}
	return append(out, &span{from: from, to: to})
}

// startTime is where a dataset's first poll begins: initial_lookback ago, but never beyond what Graph
// retains for it.
func (t *task) startTime(now time.Time) time.Time {
	lookback := t.r.cfg.InitialLookback
	if t.ds.Retention > 0 && lookback > t.ds.Retention {
		t.logger().Warn("`initial_lookback` exceeds what Graph retains for this dataset; starting at the retention limit",
			zap.Duration("initial_lookback", lookback), zap.Duration("retention", t.ds.Retention))
		lookback = t.ds.Retention
	}
	return now.Add(-lookback)
}

func (s *eventStream) pageSize() int {
	if s.ds.MaxPageSize > 0 {
		return min(s.r.cfg.PageSize, s.ds.MaxPageSize)
	}
	return s.r.cfg.PageSize
}

// emit deduplicates, delivers and commits one page.
func (s *eventStream) emit(ctx context.Context, page *fetchedPage, q *query) (int, error) {
	logs, records, err := s.records(page)
	if err != nil {
		return 0, err
	}
	keys, newest := s.prepare(records, page.fetched, q)
	n := records.Len()
	if n > 0 {
		if err := s.deliver(ctx, logs, n); err != nil {
			return 0, err
		}
	}
	// In time order every record up to the page's newest has been read: the watermark may move — once
	// the records have shown that order (a record later than the one before), not on faith.
	var advance time.Time
	if q.ordered && q.increasing {
		advance = q.newest
	}
	s.noteLateness(q)
	// The consumer has the page: commit it even if shutdown began meanwhile.
	commitCtx, cancel := finishing(ctx)
	defer cancel()
	return n, s.commit(commitCtx, keys, newest, advance)
}

// noteLateness keeps the largest lateness seen for the stream's status, and warns (once a poll) when a
// record arrived so late that one a little later would have been missed: within
// o365status.LatenessWarnShare of `lookback`.
func (s *eventStream) noteLateness(q *query) {
	if q.late <= 0 {
		return
	}
	s.update(func(st *StreamStatus) {
		if q.late > st.MaxLateness {
			st.MaxLateness, st.MaxLatenessAt = q.late, time.Now()
		}
	})
	if !q.warnedLate && o365status.LatenessNearLookback(q.late, s.lookback) {
		q.warnedLate = true
		s.logger().Warn("A record arrived nearly as late as `lookback` allows; records later than `lookback` are missed: raise this dataset's `lookback`",
			zap.Duration("lateness", q.late), zap.Time("record_time", q.lateAt), zap.Duration("lookback", s.lookback))
	}
}

func (s *eventStream) commit(ctx context.Context, keys []checkpoint.Key, newest, advance time.Time) error {
	return s.commitTo(ctx, s.cp, keys, newest, advance)
}

// commitTo commits keys (and the watermark's advance) to cp, and shows the position in the status.
func (t *task) commitTo(ctx context.Context, cp *checkpoint.Stream, keys []checkpoint.Key, newest, advance time.Time) error {
	err := cp.Commit(ctx, keys, newest, advance, t.lookback)
	wm := cp.Position()
	t.update(func(st *StreamStatus) { st.Watermark = wm })
	if err != nil {
		return fmt.Errorf("%w: %w", errStorage, err)
	}
	return nil
}

// progress reports how far a poll has come through its window: a gauge always, and a log line every
// 10 s while catching up on a window longer than a poll interval (first start, outage).
type progress struct {
	s             *eventStream
	from, to      time.Time
	began, logged time.Time
	catchingUp    bool
}

func newProgress(s *eventStream, from, to time.Time) *progress {
	p := &progress{s: s, from: from, to: to, began: time.Now(), logged: time.Now()}
	p.catchingUp = to.Sub(from) > s.interval+s.lookback
	if p.catchingUp {
		s.logger().Info("Catching up on a long window", zap.Time("from", from), zap.Time("to", to),
			zap.Int("max_concurrent_requests", s.r.cfg.MaxConcurrentRequests))
	}
	return p
}

// report records that records up to `upTo` (the last emitted record's time) are done.
func (p *progress) report(upTo time.Time, emitted int) {
	share := 1.0
	if total := p.to.Sub(p.from); total > 0 && !upTo.IsZero() {
		share = min(1, max(0, float64(upTo.Sub(p.from))/float64(total)))
	}
	p.s.update(func(st *StreamStatus) { st.BackfillProgress = share })
	if !p.catchingUp || time.Since(p.logged) < 10*time.Second || share <= 0 {
		return
	}
	p.logged = time.Now()
	elapsed := time.Since(p.began)
	eta := time.Duration(float64(elapsed) / share * (1 - share))
	p.s.logger().Info("Catch-up progress", zap.String("progress", fmt.Sprintf("%.0f%%", share*100)),
		zap.Int("records_emitted", emitted), zap.Duration("eta", eta.Round(time.Second)))
}

func (p *progress) finish(emitted int) {
	p.s.update(func(st *StreamStatus) { st.BackfillProgress = 1 })
	if p.catchingUp {
		p.s.logger().Info("Caught up", zap.Int("records_emitted", emitted), zap.Duration("took", time.Since(p.began).Round(time.Millisecond)))
	}
}

// listURL asks for [from, to] on the dataset's time field, oldest first where Graph supports ordering,
// passing over the first skip records.
func (s *eventStream) listURL(from, to time.Time, top, skip int) string {
	tf := s.ds.TimeField
	filter := fmt.Sprintf("%s ge %s and %s le %s", tf, from.UTC().Format(graphTimeLayout), tf, to.UTC().Format(graphTimeLayout))
	if s.src.Filter != "" {
		filter = s.src.Filter + " and " + filter
	}
	v := sourceQuery(s.src)
	v.Set("$filter", filter)
	if s.ds.OrderBy {
		v.Set("$orderby", tf+" asc")
	}
	v.Set("$top", fmt.Sprint(top))
	if skip > 0 {
		v.Set("$skip", fmt.Sprint(skip))
	}
	return s.sourceURL() + "?" + encodeQuery(v)
}

// sourceQuery holds the source's own query parameters ($expand).
func sourceQuery(src source) url.Values {
	v := url.Values{}
	for k, val := range src.Query {
		v.Set(k, val)
	}
	return v
}

// encodeQuery encodes v with %20 for spaces, as Graph expects; Encode escapes a literal '+' as %2B.
func encodeQuery(v url.Values) string { return strings.ReplaceAll(v.Encode(), "+", "%20") }

// query tracks one poll's pass over the time window.
type query struct {
	ordered    bool      // still in time order (Graph honoured $orderby)
	increasing bool      // a record later than the one before it was seen: the order is shown, not assumed
	last       time.Time // time of the previous record, to check the order
	newest     time.Time // newest record time seen in the query
	// behind is the position the poll began at; late is the largest lateness of a new record older than
	// it, and lateAt that record's time.
	behind     time.Time
	late       time.Duration
	lateAt     time.Time
	warnedLate bool
}

// prepare drops records already emitted (or repeated on the page), and fills the log record fields of
// the rest. It returns the dedup keys of the records kept and the newest time among them.
func (s *eventStream) prepare(records plog.LogRecordSlice, fetched time.Time, q *query) ([]checkpoint.Key, time.Time) {
	observed := pcommon.NewTimestampFromTime(fetched)
	keys := make([]checkpoint.Key, 0, records.Len())
	onPage := make(map[checkpoint.Key]struct{}, records.Len())
	var newest time.Time
	duplicates := 0
	// A record older than the dedup horizon cannot be told from one emitted already (its key may have
	// been pruned): Graph served a page again (a nextLink loop, a broken order), or it is later than
	// `lookback`. It is not emitted, and counted apart from duplicates.
	horizon := s.cp.Horizon(s.lookback)
	beyond := 0
	records.RemoveIf(func(lr plog.LogRecord) bool {
		body := lr.Body().Map()
		id := stringField(body, "id")
		at, timeErr := time.Parse(time.RFC3339Nano, stringField(body, s.ds.TimeField))
		if timeErr == nil && at.After(q.newest) {
			q.newest = at
		}
		key := s.dedupKey(id, body)
		if _, dup := onPage[key]; dup || s.cp.Seen(key) {
			duplicates++
			return true
		}
		if timeErr == nil && at.Before(horizon) {
			beyond++
			return true
		}
		// Only a new record out of order breaks the order the watermark relies on; records served
		// again (a page repeated through a nextLink) do not, so the watermark keeps moving.
		if timeErr == nil {
			if q.ordered && at.Before(q.last) {
				q.ordered = false
				s.logger().Warn("Graph returned records out of time order; the watermark moves only after complete slices")
			}
			if !q.last.IsZero() && at.After(q.last) {
				q.increasing = true
			}
			q.last = at
			if late := q.behind.Sub(at); late > 0 {
				s.r.tb.O365RecordsLateness.Record(context.Background(), late.Seconds(), s.attrs)
				if late > q.late {
					q.late, q.lateAt = late, at
				}
			}
		}
		onPage[key] = struct{}{}
		keys = append(keys, key)
		lr.SetEventName(s.ds.EventName)
		lr.SetObservedTimestamp(observed)
		if timeErr == nil {
			lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
			if at.After(newest) {
				newest = at
			}
		} else {
			newest = fetched // keep its dedup key for a full lookback
		}
		lr.Attributes().PutStr(AttrRecordID, id)
		if s.src.Variant != "" {
			lr.Attributes().PutStr(AttrRecordKind, s.src.Variant)
		}
		return false
	})
	if duplicates > 0 {
		s.r.tb.O365RecordsDuplicate.Add(context.Background(), int64(duplicates), s.attrs)
	}
	if beyond > 0 {
		s.r.tb.O365RecordsBeyondHorizon.Add(context.Background(), int64(beyond), s.attrs)
		s.logger().Warn("Graph returned records older than the dedup horizon (position − `lookback`); they are not emitted: they were emitted already, or arrived later than `lookback` allows",
			zap.Int("records", beyond), zap.Time("horizon", horizon), zap.Duration("lookback", s.lookback))
	}
	return keys, newest
}

// dedupKey identifies a record: its id (plus its version for datasets that republish changed records
// under one id), or all of its content when Graph sent no id.
func (s *eventStream) dedupKey(id string, body pcommon.Map) checkpoint.Key {
	switch {
	case id == "":
		return checkpoint.KeyOf(contentString(body))
	case s.ds.VersionField != "":
		return checkpoint.KeyOf(id, stringField(body, s.ds.VersionField))
	}
	return checkpoint.KeyOf(id)
}

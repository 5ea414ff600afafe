package o365exportexporter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter/internal/metadata"
	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// flushTick is how often the exporter looks for documents due (and states to release).
const flushTick = time.Second

// exportExporter accumulates records into per-tenant periods and writes their documents.
//
// ConsumeLogs only counts records in memory (it never touches the disk or the network, except to
// resume a period from its document in the directory); a goroutine writes documents that are due and
// hands them to the HTTP sender, whose queue and retries are exporterhelper's.
type exportExporter struct {
	cfg    *Config
	set    exporter.Settings
	logger *zap.Logger
	tb     *metadata.TelemetryBuilder
	now    func() time.Time // wall clock; replaced in tests

	mu      sync.Mutex
	tenants map[tenantKey]*tenantState

	flushMu sync.Mutex // one flush at a time: documents of one period are delivered in order

	journalDir string // "": no journal (acceptance is in memory)
	// compactAlways compacts a journal after every document write (tests), not only once it doubled.
	compactAlways bool
	recovered     bool // the journals were replayed (once)

	dir     *directory    // nil: no directory destination
	sender  *httpSender   // nil: no HTTP destination
	summary *summaryStore // nil: no summary server
	server  *summaryServer

	stop         chan struct{}
	wg           sync.WaitGroup
	started      bool
	shutdownOnce sync.Once
	shutdownErr  error
}

func newExportExporter(ctx context.Context, set exporter.Settings, cfg *Config) (*exportExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e := &exportExporter{
		cfg:     cfg,
		set:     set,
		logger:  set.Logger,
		tb:      tb,
		now:     time.Now,
		tenants: map[tenantKey]*tenantState{},
		stop:    make(chan struct{}),

		journalDir: cfg.journalPath(),
	}
	if cfg.Directory.HasValue() {
		e.dir = newDirectory(cfg.Directory.Get(), cfg.Period)
	}
	if cfg.HTTP.HasValue() {
		if e.sender, err = newHTTPSender(ctx, set, cfg, tb); err != nil {
			tb.Shutdown()
			return nil, err
		}
	}
	if cfg.SummaryServer.HasValue() {
		e.summary = newSummaryStore(cfg.SummaryServer.Get().MaxDocumentsPerTenant)
		e.server = newSummaryServer(cfg.SummaryServer.Get(), set, e.summary, cfg.Period)
	}
	err = tb.RegisterO365ExportStateRecordsCallback(func(_ context.Context, o metric.Int64Observer) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		for k, t := range e.tenants {
			o.Observe(int64(t.held), metric.WithAttributes(attribute.String("tenant", k.label())))
		}
		return nil
	})
	if err != nil {
		tb.Shutdown()
		return nil, err
	}
	return e, nil
}

func (e *exportExporter) start(ctx context.Context, host component.Host) error {
	if e.dir != nil {
		if err := e.dir.prepare(); err != nil {
			return err
		}
	}
	if err := e.recover(); err != nil {
		return err
	}
	if e.journalDir == "" {
		e.logger.Warn("The journal is disabled (`journal: { enabled: false }`): records are counted in memory, and a crash loses the counts of every period not yet written")
	}
	if e.sender != nil {
		if err := e.sender.start(ctx, host); err != nil {
			return err
		}
	}
	if e.server != nil {
		if err := e.server.start(ctx, host); err != nil {
			return err
		}
	}
	e.started = true
	e.wg.Add(1)
	go e.loop()
	return nil
}

// shutdown writes every period with records not yet in a document (open periods included), then
// stops the HTTP sender (which delivers what its queue holds, without further retries) and the server.
// It works without a prior start, and only does its work once.
func (e *exportExporter) shutdown(ctx context.Context) error {
	e.shutdownOnce.Do(func() { e.shutdownErr = e.doShutdown(ctx) })
	return e.shutdownErr
}

func (e *exportExporter) doShutdown(ctx context.Context) error {
	var errs []error
	if e.started {
		close(e.stop)
		e.wg.Wait()
		e.flush(ctx, e.now(), true)
	}
	if e.sender != nil {
		errs = append(errs, e.sender.shutdown(ctx))
	}
	if e.server != nil {
		errs = append(errs, e.server.shutdown(ctx))
	}
	e.tb.Shutdown()
	return errors.Join(errs...)
}

func (e *exportExporter) loop() {
	defer e.wg.Done()
	t := time.NewTicker(flushTick)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.flush(context.Background(), e.now(), false)
		}
	}
}

// pending is what a batch adds to one period, before it is journaled.
type pending struct {
	key     tenantKey
	p       *periodState
	batch   journalBatch
	counted int // records of the batch that count towards the tenant's held records
}

// batchKey is a record's dedup key within a batch: a record counts once per period.
type batchKey struct {
	p   *periodState
	key [16]byte
}

// consume counts a batch into the periods. Records that cannot be counted are counted as dropped
// (telemetry) and never make the pipeline retry. With the journal, the batch's contributions are on
// disk before it returns nil: it returns an error (retryable: the pipeline delivers the batch again)
// when they cannot be written, and counts none of that period's records then.
func (e *exportExporter) consume(ctx context.Context, ld plog.Logs) error {
	now := e.now()
	type tally struct{ counted, duplicate, capHits int64 }
	tallies := map[string]*tally{}
	dropped := map[[2]string]int64{}
	tallyOf := func(label string) *tally {
		t := tallies[label]
		if t == nil {
			t = &tally{}
			tallies[label] = t
		}
		return t
	}

	e.mu.Lock()
	// First what the batch adds, period by period (in memory nothing changes yet), ...
	var order []*pending
	byPeriod := map[*periodState]*pending{}
	heldBy := map[*tenantState]int{} // records of the batch the tenant will hold
	// The batch's contributions, their dedup keys and its dedup set, sized once for all its records
	// instead of grown per period; each period takes its contributions at the end.
	n := ld.LogRecordCount()
	recs := make([]contribution, 0, n)
	owners := make([]*pending, 0, n)
	keys := make([][16]byte, 0, n) // never grows: contributions point into it
	inBatch := make(map[batchKey]struct{}, n)
	var events *eventEncoder
	if e.cfg.IncludeEvents {
		events = &eventEncoder{}
	}
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		res := rl.Resource().Attributes()
		key := tenantKey{id: attrString(res, a.TenantID), name: attrString(res, a.TenantName)}
		dataset := attrString(res, a.Dataset)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				if key.id == "" && key.name == "" {
					dropped[[2]string{"", "no_tenant"}]++
					continue
				}
				at, ok := recordTime(lr)
				if !ok {
					dropped[[2]string{key.label(), "no_timestamp"}]++
					continue
				}
				ts := e.tenant(key)
				p := e.period(ts, at)
				pd := byPeriod[p]
				if pd == nil {
					pd = &pending{key: key, p: p}
					byPeriod[p] = pd
					order = append(order, pd)
					p.pinned = true // not released to make room while the batch is pending
				}
				r := readRecord(dataset, lr)
				dk := r.dedupKey()
				_, dup := p.seen[dk]
				if _, again := inBatch[batchKey{p, dk}]; dup || again {
					tallyOf(key.label()).duplicate++
					continue
				}
				if ts.held+heldBy[ts] >= e.cfg.MaxRecordsPerTenant {
					tallyOf(key.label()).capHits++
					e.releaseForRoom(ts, p, heldBy[ts])
					if ts.held+heldBy[ts] >= e.cfg.MaxRecordsPerTenant {
						pd.batch.Dropped++
						dropped[[2]string{key.label(), "tenant_cap"}]++
						continue
					}
				}
				inBatch[batchKey{p, dk}] = struct{}{}
				keys = append(keys, dk)
				recs = append(recs, contributionOf(&r, keys[len(keys)-1][:], at, events))
				owners = append(owners, pd)
				heldBy[ts]++
				pd.counted++
			}
		}
	}
	if len(order) == 1 { // the common case: the whole batch is of one period
		order[0].batch.Records = recs
	} else {
		for _, pd := range order {
			pd.batch.Records = make([]contribution, 0, pd.counted)
		}
		for i := range recs {
			owners[i].batch.Records = append(owners[i].batch.Records, recs[i])
		}
	}
	// ... then on disk, and only then in memory.
	var errs []error
	for _, pd := range order {
		pd.p.pinned = false
		if len(pd.batch.Records) == 0 && pd.batch.Dropped == 0 { // only duplicates
			continue
		}
		if e.journalDir != "" {
			pd.batch.Arrived = now.UnixNano()
			if err := e.writeBatch(pd.key, pd.p, &pd.batch); err != nil {
				errs = append(errs, fmt.Errorf("cannot journal %d records of tenant %q, period %s (not counted; the pipeline may deliver them again): %w",
					len(pd.batch.Records), pd.key.label(), formatTime(pd.p.start), err))
				if ts := e.tenants[pd.key]; pd.p.total == 0 && pd.p.dropped == 0 && !pd.p.written && pd.p.journal == nil {
					e.release(ts, pd.p.start.UnixNano()) // a period this batch opened: nothing to keep
				}
				continue
			}
		}
		for r := range pd.batch.Records {
			pd.p.apply(&pd.batch.Records[r], e.cfg.IncludeEvents)
		}
		pd.p.dropped += pd.batch.Dropped
		e.tenants[pd.key].held += pd.counted
		if len(pd.batch.Records) > 0 || pd.batch.Dropped > 0 {
			pd.p.touch(now)
		}
		tallyOf(pd.key.label()).counted += int64(len(pd.batch.Records))
	}
	e.mu.Unlock()

	for label, t := range tallies {
		opt := metric.WithAttributes(attribute.String("tenant", label))
		if t.counted > 0 {
			e.tb.O365ExportRecordsCounted.Add(ctx, t.counted, opt)
		}
		if t.duplicate > 0 {
			e.tb.O365ExportRecordsDuplicate.Add(ctx, t.duplicate, opt)
		}
		if t.capHits > 0 {
			e.tb.O365ExportTenantCapHits.Add(ctx, t.capHits, opt)
		}
	}
	for k, n := range dropped {
		e.tb.O365ExportRecordsDropped.Add(ctx, n, metric.WithAttributes(attribute.String("tenant", k[0]), attribute.String("reason", k[1])))
		if k[1] == "tenant_cap" {
			e.logger.Warn("Records not counted: the tenant reached `max_records_per_tenant` and has no written period to release",
				zap.String("tenant", k[0]), zap.Int64("records", n), zap.Int("max_records_per_tenant", e.cfg.MaxRecordsPerTenant))
		}
	}
	if len(errs) > 0 {
		err := errors.Join(errs...)
		e.logger.Error("Records not accepted: the journal cannot be written", zap.Error(err))
		return err
	}
	return nil
}

func (e *exportExporter) tenant(key tenantKey) *tenantState {
	ts := e.tenants[key]
	if ts == nil {
		ts = &tenantState{key: key, periods: map[int64]*periodState{}}
		e.tenants[key] = ts
	}
	return ts
}

// periodStart is the start of the UTC-aligned period holding t.
func (e *exportExporter) periodStart(t time.Time) time.Time {
	ns := t.UnixNano()
	p := int64(e.cfg.Period)
	start := ns - ns%p
	if ns%p < 0 {
		start -= p
	}
	return time.Unix(0, start).UTC()
}

// period returns the state of the period holding t, resuming it from its document in the directory
// when this process has none (a restart, or a state released earlier).
func (e *exportExporter) period(ts *tenantState, t time.Time) *periodState {
	start := e.periodStart(t)
	if p := ts.periods[start.UnixNano()]; p != nil {
		return p
	}
	var p *periodState
	if e.dir != nil {
		doc, err := e.dir.read(ts.key, start)
		switch {
		case err != nil:
			e.logger.Warn("Cannot resume the period from its document; starting it afresh (the document will be replaced)",
				zap.String("tenant", ts.key.label()), zap.String("period_start", formatTime(start)), zap.Error(err))
		case doc != nil:
			p = resume(doc, start)
			ts.held += p.held
		}
	}
	if p == nil {
		p = newPeriodState(start)
	}
	ts.periods[start.UnixNano()] = p
	return p
}

// releaseForRoom releases written, unchanged periods of the tenant, oldest first, until it is below its
// cap with the pending records of the batch; keep is the period the record goes to.
func (e *exportExporter) releaseForRoom(ts *tenantState, keep *periodState, pending int) {
	starts := make([]int64, 0, len(ts.periods))
	for s := range ts.periods {
		starts = append(starts, s)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	for _, s := range starts {
		if ts.held+pending < e.cfg.MaxRecordsPerTenant {
			return
		}
		p := ts.periods[s]
		if p == keep || !p.releasable() {
			continue
		}
		e.release(ts, s)
	}
}

func (p *periodState) releasable() bool { return p.written && !p.dirty && !p.inFlight && !p.pinned }

// release forgets a period whose document is written, and its journal.
func (e *exportExporter) release(ts *tenantState, start int64) {
	e.dropJournal(ts.key, ts.periods[start])
	ts.held -= ts.periods[start].held
	delete(ts.periods, start)
	if len(ts.periods) == 0 {
		delete(e.tenants, ts.key)
	}
}

// due is a document built for delivery.
type due struct {
	key     tenantKey
	start   time.Time
	id      string
	body    []byte // the document (events included when configured)
	summary []byte // the document without events, for the summary server
}

// flush builds the documents that are due at now (every period with unwritten records when force) and
// delivers them; it also releases the states that have been idle for state_idle_timeout.
func (e *exportExporter) flush(ctx context.Context, now time.Time, force bool) {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()

	var generatedAt time.Time
	if e.cfg.IncludeGeneratedAt {
		generatedAt = now
	}
	var batch []due
	e.mu.Lock()
	keys := make([]tenantKey, 0, len(e.tenants))
	for k := range e.tenants {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].label()+"\x00"+keys[i].id < keys[j].label()+"\x00"+keys[j].id })
	for _, k := range keys {
		ts := e.tenants[k]
		starts := make([]int64, 0, len(ts.periods))
		for s := range ts.periods {
			starts = append(starts, s)
		}
		sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
		for _, s := range starts {
			p := ts.periods[s]
			end := p.start.Add(e.cfg.Period)
			switch {
			case p.dirty && (force || !now.Before(later(end, p.dirtySince).Add(e.cfg.FlushDelay))):
				d, err := e.build(ts.key, p, generatedAt)
				if err != nil { // cannot happen: every value is made encodable
					e.logger.Error("Cannot encode the document", zap.String("tenant", k.label()), zap.Error(err))
					continue
				}
				p.dirty, p.written, p.inFlight = false, true, true
				batch = append(batch, d)
			case p.releasable() && !now.Before(p.lastUpdate.Add(e.cfg.StateIdleTimeout)):
				e.release(ts, s)
			}
		}
	}
	e.mu.Unlock()

	written := map[tenantKey]bool{}
	for _, d := range batch {
		ok := e.deliver(ctx, d, now)
		e.mu.Lock()
		if ts := e.tenants[d.key]; ts != nil {
			if p := ts.periods[d.start.UnixNano()]; p != nil {
				p.inFlight = false
				if !ok && !p.dirty { // try again after flush_delay
					p.dirty, p.dirtySince = true, now
				}
				if ok {
					e.compact(d.key, p)
				}
			}
		}
		e.mu.Unlock()
		if ok {
			written[d.key] = true
		}
	}
	if e.dir != nil {
		for k := range written {
			e.applyRetention(ctx, k, now)
		}
	}
}

func later(x, y time.Time) time.Time {
	if y.After(x) {
		return y
	}
	return x
}

func (e *exportExporter) build(key tenantKey, p *periodState, generatedAt time.Time) (due, error) {
	doc := p.build(key, e.cfg.Period, e.cfg.IncludeEvents, generatedAt)
	body, err := encode(doc)
	if err != nil {
		return due{}, err
	}
	d := due{key: key, start: p.start, id: doc.DocumentID, body: body, summary: body}
	if doc.Events != nil {
		doc.Events = nil
		if d.summary, err = encode(doc); err != nil {
			return due{}, err
		}
	}
	return d, nil
}

// deliver writes a document to the directory, hands it to the HTTP sender and to the summary server.
// It reports false when the directory write failed (the period is then written again later); HTTP
// failures are the sender's to retry.
func (e *exportExporter) deliver(ctx context.Context, d due, now time.Time) bool {
	opt := metric.WithAttributes(attribute.String("tenant", d.key.label()))
	ok := true
	if e.dir != nil {
		if err := e.dir.write(d.key, d.start, d.body); err != nil {
			ok = false
			e.tb.O365ExportDeliveryFailures.Add(ctx, 1, metric.WithAttributes(
				attribute.String("tenant", d.key.label()), attribute.String("destination", "directory")))
			e.logger.Error("Cannot write the export document; trying again after `flush_delay`",
				zap.String("tenant", d.key.label()), zap.String("document_id", d.id), zap.Error(err))
		} else {
			e.tb.O365ExportDocumentsWritten.Add(ctx, 1, opt)
		}
	}
	if e.sender != nil {
		if err := e.sender.enqueue(ctx, d); err != nil {
			if errors.Is(err, exporterhelper.ErrQueueIsFull) { // failed attempts are counted by the sender
				e.tb.O365ExportDeliveryFailures.Add(ctx, 1, metric.WithAttributes(
					attribute.String("tenant", d.key.label()), attribute.String("destination", "http")))
			}
			e.logger.Error("The export document was not sent", zap.String("tenant", d.key.label()),
				zap.String("document_id", d.id), zap.Error(err))
		}
	}
	if e.summary != nil {
		e.summary.put(d.key, d.start, d.summary)
	}
	return ok
}

func (e *exportExporter) applyRetention(ctx context.Context, key tenantKey, now time.Time) {
	n, err := e.dir.retain(key, now)
	if n > 0 {
		e.tb.O365ExportDocumentsDeleted.Add(ctx, int64(n), metric.WithAttributes(attribute.String("tenant", key.label())))
	}
	if err != nil {
		e.logger.Warn("Retention of export documents failed", zap.String("tenant", key.label()), zap.Error(err))
	}
}

// String for debugging.
func (d due) String() string { return fmt.Sprintf("%s (%d bytes)", d.id, len(d.body)) }

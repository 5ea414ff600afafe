package o365exportexporter

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter/internal/durable"
	"github.com/otelcol-o365/otelcol-o365/internal/jsonenc"
)

// The journal makes the exporter's acceptance durable. Every (tenant, period) held in memory has a
// journal file, <journal>/<tenant>_<hash>/<start>_<period>.jnl (internal/durable: frames with
// checksums), that is the whole truth about the period's state: a header, then optionally a snapshot
// of the state (a document with its dedup keys: when the period resumed from its written document, or
// after a compaction), then one frame per ConsumeLogs call with the contributions it counted. An
// append is fsynced before ConsumeLogs returns; at start every journal is replayed, so the periods a
// crash interrupted continue with every record that was acknowledged, dedup keys included. A period's
// journal is removed when its state is released (its document written, and idle for
// `state_idle_timeout`, or released to make room), so the journals hold no more than memory does.

// journalVersion is the version of the frames' content (the framing has its own, in internal/durable).
const journalVersion = 1

// journalExt names journal files.
const journalExt = ".jnl"

// compactMinBytes: a journal is compacted (rewritten as one snapshot) after a document write once it is
// larger than this and twice its size after the previous compaction.
const compactMinBytes = 1 << 20

// journalFrame is one frame's payload: exactly one of its parts is set.
type journalFrame struct {
	Header   *journalHeader   `json:"header,omitempty"`
	Snapshot *journalSnapshot `json:"snapshot,omitempty"`
	Batch    *journalBatch    `json:"batch,omitempty"`
}

// journalHeader opens every journal: which period of which tenant it holds.
type journalHeader struct {
	Version     int    `json:"version"`
	TenantID    string `json:"tenant_id"`
	TenantName  string `json:"tenant_name"`
	PeriodStart string `json:"period_start"`
	Period      string `json:"period"`
}

// journalSnapshot replaces the state so far: the period's document (events included with
// include_events), the dedup keys of its records and how many records it held in memory.
type journalSnapshot struct {
	Document json.RawMessage `json:"document"`
	Keys     []byte          `json:"keys"` // 16 bytes each
	Held     int             `json:"held"`
	// LastUpdate is when the period's newest record arrived (wall clock, Unix nanoseconds).
	LastUpdate int64 `json:"last_update,omitempty"`
}

// journalBatch is what one ConsumeLogs call added to the period.
type journalBatch struct {
	Records []contribution `json:"records,omitempty"`
	Dropped int64          `json:"dropped,omitempty"` // records not counted: tenant_cap
	// Arrived is when the batch was counted (wall clock, Unix nanoseconds): a rebuilt period is released
	// state_idle_timeout after its last batch, not after the restart.
	Arrived int64 `json:"arrived"`
}

// journalFileOf is the journal of a tenant's period. The directory name carries a hash of the tenant's
// id and name, since two tenant keys can share a label (and so a document directory).
func (e *exportExporter) journalFileOf(key tenantKey, start time.Time) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key.id + "\x00" + key.name))
	dir := fmt.Sprintf("%s_%08x", tenantDir(key), h.Sum32())
	return filepath.Join(e.journalDir, dir, strings.TrimSuffix(fileName(start, e.cfg.Period), ".json")+journalExt)
}

func frameOf(f journalFrame, dst []byte) ([]byte, error) {
	payload, err := json.Marshal(f)
	if err != nil {
		return dst, err
	}
	return durable.Frame(dst, payload), nil
}

// headerFrame opens the journal of a tenant's period.
func (e *exportExporter) headerFrame(key tenantKey, start time.Time, dst []byte) ([]byte, error) {
	return frameOf(journalFrame{Header: &journalHeader{
		Version: journalVersion, TenantID: key.id, TenantName: key.name,
		PeriodStart: formatTime(start), Period: isoDuration(e.cfg.Period),
	}}, dst)
}

// snapshotFrame records the period's whole state.
func (e *exportExporter) snapshotFrame(key tenantKey, p *periodState, dst []byte) ([]byte, error) {
	doc, err := encode(p.build(key, e.cfg.Period, e.cfg.IncludeEvents, time.Time{}))
	if err != nil {
		return dst, err
	}
	keys := make([]byte, 0, 16*len(p.seen))
	for k := range p.seen {
		keys = append(keys, k[:]...)
	}
	var last int64
	if !p.lastUpdate.IsZero() {
		last = p.lastUpdate.UnixNano()
	}
	return frameOf(journalFrame{Snapshot: &journalSnapshot{Document: doc, Keys: keys, Held: p.held, LastUpdate: last}}, dst)
}

// rewriteJournal replaces the period's journal with its header and a snapshot of the state, then the
// frames given (already made). It creates the journal of a new period (no snapshot for an empty state).
func (e *exportExporter) rewriteJournal(key tenantKey, p *periodState, frames []byte) error {
	buf, err := e.headerFrame(key, p.start, nil)
	if err != nil {
		return err
	}
	if p.total > 0 || p.dropped > 0 {
		if buf, err = e.snapshotFrame(key, p, buf); err != nil {
			return err
		}
	}
	path := e.journalFileOf(key, p.start)
	if p.journal != nil {
		path = p.journal.Path()
	}
	j, err := durable.CreateJournal(path, append(buf, frames...))
	if err != nil {
		return err
	}
	p.journal, p.journalBase = j, j.Size()
	return nil
}

// writeBatch makes the batch's records durable in the period's journal: appended (one fsync), or
// written with the rest of the state when the journal is new or an earlier write failed.
func (e *exportExporter) writeBatch(key tenantKey, p *periodState, b *journalBatch) error {
	frame, err := batchFrame(nil, b)
	if err != nil {
		return err
	}
	if p.journal == nil || p.journalBroken {
		if err := e.rewriteJournal(key, p, frame); err != nil {
			p.journalBroken = p.journal != nil
			return err
		}
		p.journalBroken = false
		return nil
	}
	if err := p.journal.Append(frame); err != nil {
		// The file's end is not known after a failed write or fsync: replace it at the next write.
		p.journalBroken = true
		return err
	}
	return nil
}

// compact rewrites a period's journal as one snapshot once it has doubled since it was last written
// whole (and is larger than compactMinBytes): the journal then holds ~24 bytes per record (its dedup
// key) plus the document, instead of the ~150 bytes of each contribution.
func (e *exportExporter) compact(key tenantKey, p *periodState) {
	if p.journal == nil || p.journalBroken || p.journal.Size() == p.journalBase ||
		(!e.compactAlways && (p.journal.Size() < compactMinBytes || p.journal.Size() < 2*p.journalBase)) {
		return
	}
	if err := e.rewriteJournal(key, p, nil); err != nil {
		p.journalBroken = true
		e.logger.Warn("Cannot compact the journal; it is rewritten at the next record", zap.String("tenant", key.label()),
			zap.String("period_start", formatTime(p.start)), zap.Error(err))
	}
}

// dropJournal removes the journal of a period whose state is released (its document is written).
func (e *exportExporter) dropJournal(key tenantKey, p *periodState) {
	if p.journal == nil {
		return
	}
	if err := p.journal.Remove(); err != nil {
		e.logger.Warn("Cannot remove the journal of a released period (it is read again at the next start)",
			zap.String("tenant", key.label()), zap.String("path", p.journal.Path()), zap.Error(err))
	}
	p.journal = nil
}

// recover rebuilds, from the journals, every period that was in memory when the collector last
// stopped (or crashed). A period whose document on disk already says everything is clean; the others
// are written again after `flush_delay` (with an HTTP destination, every rebuilt period is: a document
// queued in memory may have been lost, and the same bytes carry the same Idempotency-Key).
func (e *exportExporter) recover() error {
	if e.journalDir == "" || e.recovered {
		return nil
	}
	e.recovered = true
	if err := durable.MkdirAll(e.journalDir); err != nil {
		return fmt.Errorf("`journal.path`: %w", err)
	}
	tenants, err := os.ReadDir(e.journalDir)
	if err != nil {
		return fmt.Errorf("`journal.path`: %w", err)
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range tenants {
		if !t.IsDir() {
			continue
		}
		dir := filepath.Join(e.journalDir, t.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			e.logger.Warn("Cannot read a journal directory", zap.String("path", dir), zap.Error(err))
			continue
		}
		for _, f := range files {
			path := filepath.Join(dir, f.Name())
			switch {
			case f.IsDir():
			case durable.IsTemporary(f.Name()):
				_ = os.Remove(path) // a rewrite a crash interrupted: the journal it was to replace is whole
			case strings.HasSuffix(f.Name(), journalExt):
				e.recoverFile(path, now)
			}
		}
	}
	return nil
}

func (e *exportExporter) recoverFile(path string, now time.Time) {
	j, c, err := durable.OpenJournal(path)
	if err != nil {
		e.logger.Warn("Cannot read a journal; its period continues from its document, if any", zap.String("path", path), zap.Error(err))
		return
	}
	if c.Dropped > 0 {
		e.logger.Info("Ignored the end of a journal that a crash cut short (it was never acknowledged)",
			zap.String("path", path), zap.Int64("bytes", c.Dropped))
	}
	key, p, err := e.replay(c.Frames)
	if err != nil {
		e.logger.Warn("Cannot replay a journal; it is left as it is", zap.String("path", path), zap.Error(err))
		return
	}
	if p == nil { // a journal of another period length: leave it for a configuration that uses it
		e.logger.Info("Left a journal of another `period` alone", zap.String("path", path))
		return
	}
	ts := e.tenant(key)
	if old := ts.periods[p.start.UnixNano()]; old != nil { // cannot happen: one file per tenant and period
		ts.held -= old.held
	}
	p.journal, p.journalBase = j, j.Size()
	ts.periods[p.start.UnixNano()] = p
	ts.held += p.held
	if p.lastUpdate.IsZero() || p.lastUpdate.After(now) {
		p.lastUpdate = now
	}
	p.written = e.dir != nil && e.dir.exists(key, p.start)
	if e.sender == nil && p.written && e.unchanged(key, p) {
		return
	}
	p.dirty, p.dirtySince = true, now
}

// replay rebuilds a period's state from its journal's frames; p is nil for a journal of another period
// length.
func (e *exportExporter) replay(frames [][]byte) (tenantKey, *periodState, error) {
	if len(frames) == 0 {
		return tenantKey{}, nil, errors.New("no header")
	}
	var first journalFrame
	if err := json.Unmarshal(frames[0], &first); err != nil || first.Header == nil {
		return tenantKey{}, nil, fmt.Errorf("no header: %v", err)
	}
	h := first.Header
	if h.Version != journalVersion {
		return tenantKey{}, nil, fmt.Errorf("journal version %d is not %d", h.Version, journalVersion)
	}
	if h.Period != isoDuration(e.cfg.Period) {
		return tenantKey{}, nil, nil
	}
	start, err := time.Parse(time.RFC3339Nano, h.PeriodStart)
	if err != nil || !e.periodStart(start).Equal(start) {
		return tenantKey{}, nil, fmt.Errorf("bad period start %q", h.PeriodStart)
	}
	key := tenantKey{id: h.TenantID, name: h.TenantName}
	p := newPeriodState(start)
	for i, raw := range frames[1:] {
		var f journalFrame
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // numbers inside incidents' entities and context stay exact
		if err := dec.Decode(&f); err != nil {
			return key, nil, fmt.Errorf("frame %d: %w", i+1, err)
		}
		switch {
		case f.Snapshot != nil:
			doc, err := parseDocument(f.Snapshot.Document)
			if err != nil {
				return key, nil, fmt.Errorf("frame %d: %w", i+1, err)
			}
			p = resume(doc, start)
			p.written = false
			for k := 0; k+16 <= len(f.Snapshot.Keys); k += 16 {
				p.seen[[16]byte(f.Snapshot.Keys[k:k+16])] = struct{}{}
			}
			p.held = f.Snapshot.Held
			if f.Snapshot.LastUpdate != 0 {
				p.lastUpdate = time.Unix(0, f.Snapshot.LastUpdate)
			}
		case f.Batch != nil:
			if at := time.Unix(0, f.Batch.Arrived); f.Batch.Arrived != 0 && at.After(p.lastUpdate) {
				p.lastUpdate = at
			}
			for r := range f.Batch.Records {
				c := &f.Batch.Records[r]
				if len(c.Key) != 16 {
					return key, nil, fmt.Errorf("frame %d: a record without its dedup key", i+1)
				}
				if _, dup := p.seen[[16]byte(c.Key)]; dup { // cannot happen: only new records are journaled
					continue
				}
				p.apply(c, e.cfg.IncludeEvents)
			}
			p.dropped += f.Batch.Dropped
		}
	}
	return key, p, nil
}

// unchanged tells whether the document on disk is what the period's state would write.
func (e *exportExporter) unchanged(key tenantKey, p *periodState) bool {
	if e.cfg.IncludeGeneratedAt {
		return false
	}
	have, err := os.ReadFile(e.dir.path(key, p.start))
	if err != nil {
		return false
	}
	want, err := encode(p.build(key, e.cfg.Period, e.cfg.IncludeEvents, time.Time{}))
	return err == nil && bytes.Equal(have, want)
}

// batchFrame is frameOf(journalFrame{Batch: b}), written by hand: encoding/json spends most of a page's
// time on reflection and on re-validating the events' JSON (json.RawMessage), which here is appended
// as it is (contributionOf made it with json.Marshal). journalFrame decodes it (TestBatchFrameDecodes).
func batchFrame(dst []byte, b *journalBatch) ([]byte, error) {
	size := 64
	for i := range b.Records {
		size += 192 + len(b.Records[i].Event)
	}
	if dst == nil {
		dst = make([]byte, 0, size)
	}
	var err error
	dst = durable.AppendFrame(dst, func(buf []byte) []byte {
		buf = append(buf, `{"batch":{`...)
		if len(b.Records) > 0 {
			buf = append(buf, `"records":[`...)
			for i := range b.Records {
				c := &b.Records[i]
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, `{"k":"`...)
				buf = base64.StdEncoding.AppendEncode(buf, c.Key)
				buf = append(buf, `","d":`...)
				buf = jsonenc.AppendString(buf, c.Dataset)
				buf = append(buf, `,"t":`...)
				buf = strconv.AppendInt(buf, c.At, 10)
				for _, f := range [...]struct{ name, v string }{{"e", c.EventType}, {"dm", c.Domain}, {"c", c.Control}, {"m", c.Metric}, {"id", c.ID}} {
					if f.v != "" {
						buf = append(append(append(buf, ',', '"'), f.name...), '"', ':')
						buf = jsonenc.AppendString(buf, f.v)
					}
				}
				if c.Incident != nil {
					inc, ierr := json.Marshal(c.Incident)
					if ierr != nil {
						err = ierr
					}
					buf = append(append(buf, `,"i":`...), inc...)
				}
				if len(c.Event) > 0 {
					buf = append(append(buf, `,"v":`...), c.Event...)
				}
				buf = append(buf, '}')
			}
			buf = append(buf, ']')
		}
		if len(b.Records) > 0 {
			buf = append(buf, ',')
		}
		if b.Dropped != 0 {
			buf = strconv.AppendInt(append(buf, `"dropped":`...), b.Dropped, 10)
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(append(buf, `"arrived":`...), b.Arrived, 10)
		return append(buf, "}}"...)
	})
	return dst, err
}

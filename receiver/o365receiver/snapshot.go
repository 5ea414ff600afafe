package o365receiver

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/o365attr"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver/internal/checkpoint"
)

// Snapshot record attributes (shared names: internal/o365attr).
const (
	// AttrChange is baseline (the first snapshot), added, modified, unchanged or removed.
	AttrChange = o365attr.Change
	// AttrSnapshotTime identifies the snapshot a record belongs to (RFC 3339).
	AttrSnapshotTime = o365attr.SnapshotTime

	ChangeBaseline  = o365attr.ChangeBaseline
	ChangeAdded     = o365attr.ChangeAdded
	ChangeModified  = o365attr.ChangeModified
	ChangeUnchanged = o365attr.ChangeUnchanged
	ChangeRemoved   = o365attr.ChangeRemoved
)

// snapshotStream collects a Graph collection that has no usable time field: every poll reads it whole
// and emits every item with o365.change saying how it differs from what was emitted before (by id and
// content hash, kept in storage), plus one record per removed item.
//
// Each change is labelled once. After each page the consumer accepted, the items it labelled added or
// modified (or baseline) are committed as a partial record of the snapshot, so a read that fails
// half-way and is retried labels them unchanged. Removals are known only once a read completed; a
// complete read that would remove a large share of the items (a listing that ended early, a replica of
// Graph that has not caught up) removes nothing yet: those items are held and reported removed only
// when the next complete read does not list them either (see holdRemovals). The complete snapshot is
// committed after the consumer accepted its removals.
type snapshotStream struct {
	*task
	// prev is what was emitted: the last complete snapshot, with the partial records of the read under
	// way merged in. Loaded by the first poll.
	prev *snapshotState
	// partials is how many partial records are stored under stateKey()/partial/; unsaved holds the
	// writes that failed, written before anything else.
	partials   int
	unsaved    []*storage.Operation
	summarizer func() summarizer
}

// summarizer folds a snapshot's items into one summary record.
type summarizer interface {
	add(item pcommon.Map)
	// write fills the summary body and returns its EventName.
	write(body pcommon.Map) string
}

// snapshotState is the persisted id → content hash of the last complete snapshot.
type snapshotState struct {
	Version int `json:"v"`
	// Taken is when the last complete snapshot was read (zero: none yet, the next one is the baseline).
	Taken time.Time         `json:"taken"`
	Items map[string]string `json:"items"`
	// Held lists the ids of Items that the last complete read did not list but whose removal was held
	// back (see holdRemovals).
	Held []string `json:"held,omitempty"`
}

const snapshotStateVersion = 1

// holdRemovals reports whether a complete read that no longer lists missing of the prev items it
// should have is suspect: it would remove at least 2 items and more than a tenth of them. Graph's lists
// are eventually consistent, and a listing can end early (a page without its nextLink): such a read is
// not trusted to say that items were removed; the next one decides.
func holdRemovals(missing, prev int) bool { return missing >= 2 && missing*10 > prev }

func newSnapshotStream(t *task) *snapshotStream {
	s := &snapshotStream{task: t}
	if t.ds.Name == "mfa_coverage" {
		s.summarizer = func() summarizer { return &mfaCoverage{} }
	}
	t.poll = s.poll
	t.reset = func() { s.prev, s.partials, s.unsaved = nil, 0, nil }
	t.flush = s.flush
	t.stateKey = s.stateKey()
	return s
}

func (s *snapshotStream) stateKey() string { return s.checkpointPrefix() + "/snapshot" }

func (s *snapshotStream) partialKey(n int) string {
	return fmt.Sprintf("%s/partial/%d", s.stateKey(), n)
}

func (s *snapshotStream) poll(ctx context.Context) (int, error) {
	if s.prev == nil {
		if err := s.loadState(ctx); err != nil {
			return 0, err
		}
	}
	if err := s.flush(ctx); err != nil { // what could not be written before goes first
		return 0, err
	}
	taken := time.Now().UTC()
	read := map[string]string{} // id → hash of the items this read lists
	var sum summarizer
	if s.summarizer != nil {
		sum = s.summarizer()
	}
	emitted := 0
	link := s.sourceURL()
	if len(s.src.Query) > 0 {
		link += "?" + encodeQuery(sourceQuery(s.src))
	}
	visited := map[string]bool{}
	var via graph.ResponseInfo // the response whose nextLink link is
	for link != "" {
		if visited[link] {
			return emitted, pagingLoop(via, "snapshot")
		}
		visited[link] = true
		page, err := s.fetch(ctx, link)
		if err != nil {
			return emitted, err
		}
		link, via = page.parsed.NextURL(link), page.info
		logs, records, err := s.records(page)
		if err != nil {
			return emitted, err
		}
		changed := s.mark(records, page.fetched, read, taken, sum)
		if n := records.Len(); n > 0 {
			if err := s.deliver(ctx, logs, n); err != nil {
				return emitted, err
			}
			emitted += n
		}
		if err := s.commitPage(ctx, changed); err != nil {
			return emitted, err
		}
	}

	removed, held := s.removals(read)
	if len(held) > 0 {
		s.logger().Warn("A complete read of the snapshot no longer lists many of its items; their removal is held until the next read confirms it",
			zap.Int("missing", len(held)), zap.Int("previous", len(s.prev.Items)), zap.Int("listed", len(read)))
	}
	logs, records := s.newBatch()
	for _, id := range removed {
		lr := records.AppendEmpty()
		lr.Body().SetEmptyMap().PutStr("id", id)
		s.stamp(lr, id, ChangeRemoved, taken, taken)
	}
	if sum != nil && len(held) == 0 { // no summary of a read that is suspect of missing items
		lr := records.AppendEmpty()
		lr.SetEventName(sum.write(lr.Body().SetEmptyMap()))
		lr.SetTimestamp(pcommon.NewTimestampFromTime(taken))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(taken))
		lr.Attributes().PutStr(AttrSnapshotTime, taken.Format(time.RFC3339Nano))
	}
	if n := records.Len(); n > 0 {
		if err := s.deliver(ctx, logs, n); err != nil {
			return emitted, err
		}
		emitted += n
	}
	next := &snapshotState{Version: snapshotStateVersion, Taken: taken, Items: read, Held: held}
	for _, id := range held {
		next.Items[id] = s.prev.Items[id]
	}
	raw, err := json.Marshal(next)
	if err != nil {
		return emitted, err
	}
	ops := []*storage.Operation{storage.SetOperation(s.stateKey(), raw)}
	for n := range s.partials {
		ops = append(ops, storage.DeleteOperation(s.partialKey(n)))
	}
	s.prev, s.partials = next, 0
	return emitted, s.write(ctx, ops...)
}

// commitPage records the items of a page the consumer accepted that it labelled other than unchanged.
func (s *snapshotStream) commitPage(ctx context.Context, changed map[string]string) error {
	if len(changed) == 0 {
		return nil
	}
	for id, hash := range changed {
		s.prev.Items[id] = hash
	}
	raw, err := json.Marshal(changed)
	if err != nil {
		return err
	}
	s.partials++
	return s.write(ctx, storage.SetOperation(s.partialKey(s.partials-1), raw))
}

// write commits ops after whatever could not be written before; on failure they stay pending. The
// consumer has what they record: they are written even if shutdown began meanwhile.
func (s *snapshotStream) write(ctx context.Context, ops ...*storage.Operation) error {
	s.unsaved = append(s.unsaved, ops...)
	wctx, cancel := finishing(ctx)
	defer cancel()
	return s.flush(wctx)
}

// flush writes the pending operations.
func (s *snapshotStream) flush(ctx context.Context) error {
	if len(s.unsaved) == 0 {
		return nil
	}
	if err := s.store.Batch(ctx, s.unsaved...); err != nil {
		return fmt.Errorf("%w: writing %s: %w", errStorage, s.stateKey(), err)
	}
	s.unsaved = nil
	return nil
}

// mark sets each record's fields and change, and records it in read; repeated ids are dropped. It
// returns the items labelled other than unchanged, with their new hashes.
func (s *snapshotStream) mark(records plog.LogRecordSlice, fetched time.Time, read map[string]string, taken time.Time, sum summarizer) map[string]string {
	changed := map[string]string{}
	records.RemoveIf(func(lr plog.LogRecord) bool {
		body := lr.Body().Map()
		id := stringField(body, "id")
		if id == "" {
			id = "content:" + contentHash(body)
		}
		if _, dup := read[id]; dup {
			return true
		}
		hash := contentHash(body)
		read[id] = hash
		change := ChangeAdded
		switch old, ok := s.prev.Items[id]; {
		case ok && old == hash:
			change = ChangeUnchanged
		case ok:
			change = ChangeModified
		case s.prev.Taken.IsZero():
			change = ChangeBaseline
		}
		if change != ChangeUnchanged {
			changed[id] = hash
		}
		s.stamp(lr, id, change, taken, fetched)
		if sum != nil {
			sum.add(body)
		}
		return false
	})
	return changed
}

func (s *snapshotStream) stamp(lr plog.LogRecord, id, change string, taken, observed time.Time) {
	lr.SetEventName(s.ds.EventName)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(taken))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	a := lr.Attributes()
	a.PutStr(AttrRecordID, id)
	a.PutStr(AttrChange, change)
	a.PutStr(AttrSnapshotTime, taken.Format(time.RFC3339Nano))
	if s.src.Variant != "" {
		a.PutStr(AttrRecordKind, s.src.Variant)
	}
}

// removals lists, sorted, the items emitted before that read does not list: those to report removed
// now, and those whose removal is held (holdRemovals) — unless the previous read had missed them too.
func (s *snapshotStream) removals(read map[string]string) (removed, held []string) {
	wasHeld := map[string]bool{}
	for _, id := range s.prev.Held {
		wasHeld[id] = true
	}
	var missing []string
	for id := range s.prev.Items {
		if _, ok := read[id]; ok {
			continue
		}
		if wasHeld[id] { // two complete reads in a row without it
			removed = append(removed, id)
		} else {
			missing = append(missing, id)
		}
	}
	sort.Strings(missing)
	if holdRemovals(len(missing), len(s.prev.Items)) {
		held = missing
	} else {
		removed = append(removed, missing...)
	}
	sort.Strings(removed)
	return removed, held
}

// loadState reads the last complete snapshot and merges in the partial records of a read that did
// not complete.
func (s *snapshotStream) loadState(ctx context.Context) error {
	raw, err := s.store.Get(ctx, s.stateKey())
	if err != nil {
		return fmt.Errorf("%w: reading %s: %w", errStorage, s.stateKey(), err)
	}
	st := &snapshotState{Version: snapshotStateVersion, Items: map[string]string{}}
	if raw != nil {
		if err := json.Unmarshal(raw, st); err != nil || st.Version != snapshotStateVersion || st.Items == nil {
			return fmt.Errorf("%w: %s is corrupt or of another version", errStorage, s.stateKey())
		}
	}
	partials := 0
	for ; ; partials++ {
		raw, err := s.store.Get(ctx, s.partialKey(partials))
		if err != nil {
			return fmt.Errorf("%w: reading %s: %w", errStorage, s.partialKey(partials), err)
		}
		if raw == nil {
			break
		}
		var changed map[string]string
		if err := json.Unmarshal(raw, &changed); err != nil {
			return fmt.Errorf("%w: %s is corrupt", errStorage, s.partialKey(partials))
		}
		for id, hash := range changed {
			st.Items[id] = hash
		}
	}
	s.prev, s.partials, s.unsaved = st, partials, nil
	return nil
}

func contentHash(m pcommon.Map) string {
	k := checkpoint.KeyOf(contentString(m))
	return hex.EncodeToString(k[:])
}

// mfaCoverage summarises userRegistrationDetails: how many users, admins among them, are registered
// for and capable of MFA.
type mfaCoverage struct {
	users, registered, capable, admins int
	adminsWithout                      []string
}

func (c *mfaCoverage) add(item pcommon.Map) {
	c.users++
	registered := boolField(item, "isMfaRegistered")
	if registered {
		c.registered++
	}
	if boolField(item, "isMfaCapable") {
		c.capable++
	}
	if boolField(item, "isAdmin") {
		c.admins++
		if !registered {
			c.adminsWithout = append(c.adminsWithout, stringField(item, "userPrincipalName"))
		}
	}
}

func (c *mfaCoverage) write(body pcommon.Map) string {
	body.PutInt("users", int64(c.users))
	body.PutInt("mfaRegistered", int64(c.registered))
	body.PutInt("mfaCapable", int64(c.capable))
	body.PutInt("admins", int64(c.admins))
	body.PutInt("adminsWithoutMfa", int64(len(c.adminsWithout)))
	coverage := 1.0
	if c.users > 0 {
		coverage = float64(c.registered) / float64(c.users)
	}
	body.PutDouble("mfaRegisteredRatio", coverage)
	sort.Strings(c.adminsWithout)
	s := body.PutEmptySlice("adminsWithoutMfaUserPrincipalNames")
	for _, upn := range c.adminsWithout {
		s.AppendEmpty().SetStr(upn)
	}
	return "o365.mfa_coverage_summary"
}

func boolField(m pcommon.Map, key string) bool {
	v, ok := m.Get(key)
	return ok && v.Type() == pcommon.ValueTypeBool && v.Bool()
}

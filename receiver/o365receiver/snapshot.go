package o365receiver

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

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
// and emits every item with o365.change saying how it differs from the previous snapshot (by id and
// content hash, kept in storage), plus one record per removed item. The new snapshot state is committed
// only after the consumer accepted everything; a crash before that re-emits the snapshot and recomputes
// the changes against the last committed one.
type snapshotStream struct {
	*task
	prev       *snapshotState // loaded by the first poll
	summarizer func() summarizer
}

// summarizer folds a snapshot's items into one summary record.
type summarizer interface {
	add(item pcommon.Map)
	// write fills the summary body and returns its EventName.
	write(body pcommon.Map) string
}

// snapshotState is the persisted id → content hash of the last snapshot.
type snapshotState struct {
	Version int               `json:"v"`
	Taken   time.Time         `json:"taken"`
	Items   map[string]string `json:"items"`
}

const snapshotStateVersion = 1

func newSnapshotStream(t *task) *snapshotStream {
	s := &snapshotStream{task: t}
	if t.ds.Name == "mfa_coverage" {
		s.summarizer = func() summarizer { return &mfaCoverage{} }
	}
	t.poll = s.poll
	t.reset = func() { s.prev = nil }
	return s
}

func (s *snapshotStream) stateKey() string { return s.checkpointPrefix() + "/snapshot" }

func (s *snapshotStream) poll(ctx context.Context) (int, error) {
	if s.prev == nil {
		st, err := s.loadState(ctx)
		if err != nil {
			return 0, err
		}
		s.prev = st
	}
	taken := time.Now().UTC()
	next := &snapshotState{Version: snapshotStateVersion, Taken: taken, Items: map[string]string{}}
	var sum summarizer
	if s.summarizer != nil {
		sum = s.summarizer()
	}
	emitted := 0
	link := s.sourceURL()
	if len(s.src.Query) > 0 {
		v := url.Values{}
		for k, val := range s.src.Query {
			v.Set(k, val)
		}
		link += "?" + encodeQuery(v)
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
		link, via = page.parsed.NextLink(), page.info
		logs, records, err := s.records(page)
		if err != nil {
			return emitted, err
		}
		s.mark(records, page.fetched, next, taken, sum)
		if n := records.Len(); n > 0 {
			if err := s.deliver(ctx, logs, n); err != nil {
				return emitted, err
			}
			emitted += n
		}
	}

	logs, records := s.newBatch()
	for _, id := range s.removed(next) {
		lr := records.AppendEmpty()
		lr.Body().SetEmptyMap().PutStr("id", id)
		s.stamp(lr, id, ChangeRemoved, taken, taken)
	}
	if sum != nil {
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
	saveCtx, cancel := finishing(ctx) // the consumer has the whole snapshot: record it even if shutdown began
	defer cancel()
	if err := s.saveState(saveCtx, next); err != nil {
		return emitted, err
	}
	s.prev = next
	return emitted, nil
}

// mark sets each record's fields and change, and records it in next; repeated ids are dropped.
func (s *snapshotStream) mark(records plog.LogRecordSlice, fetched time.Time, next *snapshotState, taken time.Time, sum summarizer) {
	records.RemoveIf(func(lr plog.LogRecord) bool {
		body := lr.Body().Map()
		id := stringField(body, "id")
		if id == "" {
			id = "content:" + contentHash(body)
		}
		if _, dup := next.Items[id]; dup {
			return true
		}
		hash := contentHash(body)
		next.Items[id] = hash
		change := ChangeAdded
		switch old, ok := s.prev.Items[id]; {
		case s.prev.Taken.IsZero():
			change = ChangeBaseline
		case ok && old == hash:
			change = ChangeUnchanged
		case ok:
			change = ChangeModified
		}
		s.stamp(lr, id, change, taken, fetched)
		if sum != nil {
			sum.add(body)
		}
		return false
	})
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

// removed lists, sorted, the ids of the previous snapshot missing from next.
func (s *snapshotStream) removed(next *snapshotState) []string {
	if s.prev.Taken.IsZero() {
		return nil
	}
	var out []string
	for id := range s.prev.Items {
		if _, ok := next.Items[id]; !ok {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func (s *snapshotStream) loadState(ctx context.Context) (*snapshotState, error) {
	raw, err := s.store.Get(ctx, s.stateKey())
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", errStorage, s.stateKey(), err)
	}
	st := &snapshotState{Version: snapshotStateVersion, Items: map[string]string{}}
	if raw == nil {
		return st, nil
	}
	if err := json.Unmarshal(raw, st); err != nil || st.Version != snapshotStateVersion {
		return nil, fmt.Errorf("%w: %s is corrupt or of another version", errStorage, s.stateKey())
	}
	return st, nil
}

func (s *snapshotStream) saveState(ctx context.Context, st *snapshotState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := s.store.Set(ctx, s.stateKey(), raw); err != nil {
		return fmt.Errorf("%w: writing %s: %w", errStorage, s.stateKey(), err)
	}
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

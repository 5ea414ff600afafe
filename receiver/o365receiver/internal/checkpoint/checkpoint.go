// Package checkpoint keeps the position of one event stream (tenant × dataset) in a collector storage
// client: the watermark, how far complete reads reached, where collection started, and the set of
// records already emitted inside the lookback window (with the time from which that set is complete),
// so that re-reading the window after a restart or for late arrivals emits nothing twice.
//
// Layout under a prefix P:
//
//	P/state      JSON State (versioned)
//	P/seen/<n>   chunk n: the dedup keys committed by one batch, 16 bytes each, after a version byte
//
// Every commit writes one new chunk and the state, and deletes chunks that fell out of the lookback
// window, in one storage batch.
package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

const (
	// stateVersion 2 added ReadTo and KeysFrom; version 1 states load with both zero.
	stateVersion = 2
	chunkVersion = 1
	keySize      = 16
)

// Key identifies a record for dedup: a 128-bit FNV-1a hash, so that a million keys cost 16 MB and a
// collision (which would drop a record) is practically impossible (~1e-27 for a million keys).
type Key [keySize]byte

// KeyOf hashes the parts that identify one record (its id, plus a version field where one record has
// several versions).
func KeyOf(parts ...string) Key {
	h := fnv.New128a()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	var k Key
	h.Sum(k[:0])
	return k
}

// State is the persisted position of a stream.
type State struct {
	Version int `json:"v"`
	// Start is where collection began (the first poll's now − initial_lookback); used until a record
	// has been committed.
	Start time.Time `json:"start"`
	// Watermark is the newest record time committed: advanced from records only.
	Watermark time.Time `json:"watermark,omitzero"`
	// ReadTo is the end of the last read of the window that completed: every record visible in Graph
	// then, with a time up to ReadTo, was emitted. It moves the position of a stream whose reads come
	// back empty (a sign-in kind without records), never past what a query covered.
	ReadTo time.Time `json:"read_to,omitzero"`
	// KeysFrom is where the dedup keys are complete: keys of records older than it were pruned, so such
	// a record can no longer be told from one already emitted. Persisted so that a larger lookback after
	// a restart does not re-emit what the pruned keys covered. Zero (no prune yet, or a version 1 state):
	// position − lookback.
	KeysFrom time.Time `json:"keys_from,omitzero"`
	// Chunks of dedup keys still inside the lookback window.
	Chunks []Chunk `json:"chunks,omitempty"`
	// NextChunk numbers the next chunk.
	NextChunk uint64 `json:"next_chunk"`
}

// Chunk is the summary of one stored chunk of dedup keys.
type Chunk struct {
	N uint64 `json:"n"`
	// Newest is the newest record time in the chunk: the chunk is dropped once it is older than
	// watermark − lookback, when no query can return its records any more.
	Newest time.Time `json:"newest"`
}

// Stream is the checkpoint of one stream, loaded in memory.
type Stream struct {
	client storage.Client
	prefix string

	state   State
	seen    map[Key]struct{}
	byChunk map[uint64][]Key
	// pending are storage operations not yet written (a failed commit is retried before the next);
	// dirty says the state itself must be written.
	pending []*storage.Operation
	dirty   bool
}

// ErrCorrupt marks stored state that cannot be read; the caller reports it rather than guessing.
var ErrCorrupt = errors.New("checkpoint: stored state is corrupt")

// Load reads the checkpoint under prefix; a missing one yields an empty stream whose Start is the
// zero time (the caller sets it).
func Load(ctx context.Context, client storage.Client, prefix string) (*Stream, error) {
	s := &Stream{client: client, prefix: prefix, seen: map[Key]struct{}{}, byChunk: map[uint64][]Key{},
		state: State{Version: stateVersion}}
	raw, err := client.Get(ctx, StateKey(prefix))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: reading %s/state: %w", prefix, err)
	}
	if raw == nil {
		return s, nil
	}
	if err := json.Unmarshal(raw, &s.state); err != nil {
		return nil, fmt.Errorf("%w: %s/state: %v", ErrCorrupt, prefix, err)
	}
	if s.state.Version < 1 || s.state.Version > stateVersion {
		return nil, fmt.Errorf("%w: %s/state has version %d, this build reads 1 to %d", ErrCorrupt, prefix, s.state.Version, stateVersion)
	}
	s.state.Version = stateVersion // written back in this version with the next commit
	for _, c := range s.state.Chunks {
		raw, err := client.Get(ctx, s.chunkKey(c.N))
		if err != nil {
			return nil, fmt.Errorf("checkpoint: reading %s: %w", s.chunkKey(c.N), err)
		}
		keys, err := decodeChunk(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, s.chunkKey(c.N), err)
		}
		s.byChunk[c.N] = keys
		for _, k := range keys {
			s.seen[k] = struct{}{}
		}
	}
	return s, nil
}

// StateKey is the key of the stream's state under prefix: present once the stream has committed.
func StateKey(prefix string) string { return prefix + "/state" }

// UseClient makes the stream read and write through c from now on: the same data through another
// client (a tenant lease's new fenced client), pending writes included.
func (s *Stream) UseClient(c storage.Client) { s.client = c }

// State returns a copy of the current (possibly not yet persisted) state.
func (s *Stream) State() State { return s.state }

// Seen reports whether a record with key k was already committed.
func (s *Stream) Seen(k Key) bool {
	_, ok := s.seen[k]
	return ok
}

// SeenCount is the number of dedup keys held.
func (s *Stream) SeenCount() int { return len(s.seen) }

// SetStart records where collection begins, if nothing set it before. It is persisted with the next
// commit (or Flush).
func (s *Stream) SetStart(t time.Time) {
	if s.state.Start.IsZero() {
		s.state.Start = t
		s.dirty = true
	}
}

// Position is how far the stream has read: the later of the watermark and ReadTo (zero before either).
func (s *Stream) Position() time.Time {
	if s.state.ReadTo.After(s.state.Watermark) {
		return s.state.ReadTo
	}
	return s.state.Watermark
}

// StoredPosition is the position of a stream's stored state (as Position would be once loaded): zero
// while it has completed no read.
func StoredPosition(raw []byte) (time.Time, error) {
	s := Stream{}
	if err := json.Unmarshal(raw, &s.state); err != nil {
		return time.Time{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return s.Position(), nil
}

// QueryStart is where the next query begins: position − lookback, but not before Start nor before the
// dedup keys are complete (older records could not be told from emitted ones); Start before any commit.
func (s *Stream) QueryStart(lookback time.Duration) time.Time {
	pos := s.Position()
	if pos.IsZero() {
		return s.state.Start
	}
	from := pos.Add(-lookback)
	for _, floor := range []time.Time{s.state.Start, s.state.KeysFrom} {
		if from.Before(floor) {
			from = floor
		}
	}
	return from
}

// CompleteRead records that a read of the window up to `to` completed: every record visible with a
// time up to it has been committed. The position may move there (never back); it is persisted with
// the next commit or Flush.
func (s *Stream) CompleteRead(to time.Time) {
	if to.After(s.state.ReadTo) {
		s.state.ReadTo = to
		s.dirty = true
	}
}

// Commit records keys as emitted (newest = the newest record time among them) and, if advance is
// later than the watermark, moves the watermark there. Memory is updated at once, so the caller never
// emits these records again; the storage write happens in the same call and, if it fails, is retried by
// the next Commit or Flush (the error is returned so the caller stops fetching until storage is back).
func (s *Stream) Commit(ctx context.Context, keys []Key, newest, advance time.Time, lookback time.Duration) error {
	kept := make([]Key, 0, len(keys))
	for _, k := range keys {
		if _, dup := s.seen[k]; !dup {
			s.seen[k] = struct{}{}
			kept = append(kept, k)
		}
	}
	if len(kept) > 0 {
		n := s.state.NextChunk
		s.state.NextChunk++
		s.byChunk[n] = kept
		s.state.Chunks = append(s.state.Chunks, Chunk{N: n, Newest: newest})
		s.pending = append(s.pending, storage.SetOperation(s.chunkKey(n), encodeChunk(kept)))
	}
	if advance.After(s.state.Watermark) {
		s.state.Watermark = advance
		s.dirty = true
	}
	s.prune(lookback)
	return s.Flush(ctx)
}

// Horizon is where the dedup keys begin to be complete: KeysFrom, or position − lookback when later
// (zero before the first position). A record older than it must not be emitted: it was emitted
// already, or it is later than any lookback can collect exactly once.
func (s *Stream) Horizon(lookback time.Duration) time.Time {
	pos := s.Position()
	if pos.IsZero() {
		return s.state.KeysFrom
	}
	if h := pos.Add(-lookback); h.After(s.state.KeysFrom) {
		return h
	}
	return s.state.KeysFrom
}

// prune forgets chunks whose newest record is older than the horizon, and records the horizon as
// KeysFrom.
func (s *Stream) prune(lookback time.Duration) {
	horizon := s.Horizon(lookback)
	if horizon.IsZero() {
		return
	}
	if horizon.After(s.state.KeysFrom) {
		s.state.KeysFrom = horizon
		s.dirty = true
	}
	kept := s.state.Chunks[:0]
	for _, c := range s.state.Chunks {
		if !c.Newest.Before(horizon) {
			kept = append(kept, c)
			continue
		}
		for _, k := range s.byChunk[c.N] {
			delete(s.seen, k)
		}
		delete(s.byChunk, c.N)
		s.pending = append(s.pending, storage.DeleteOperation(s.chunkKey(c.N)))
	}
	s.state.Chunks = kept
}

// Dirty reports whether changes wait to be written.
func (s *Stream) Dirty() bool { return s.dirty || len(s.pending) > 0 }

// Flush writes pending changes and the state in one batch.
func (s *Stream) Flush(ctx context.Context) error {
	if !s.Dirty() {
		return nil
	}
	raw, err := json.Marshal(s.state)
	if err != nil {
		return err
	}
	ops := append(s.pending, storage.SetOperation(StateKey(s.prefix), raw))
	if err := s.client.Batch(ctx, ops...); err != nil {
		return fmt.Errorf("checkpoint: writing %s: %w", s.prefix, err)
	}
	s.pending, s.dirty = nil, false
	return nil
}

func (s *Stream) chunkKey(n uint64) string { return fmt.Sprintf("%s/seen/%d", s.prefix, n) }

func encodeChunk(keys []Key) []byte {
	b := make([]byte, 1, 1+len(keys)*keySize)
	b[0] = chunkVersion
	for _, k := range keys {
		b = append(b, k[:]...)
	}
	return b
}

func decodeChunk(b []byte) ([]Key, error) {
	if len(b) == 0 {
		return nil, errors.New("missing chunk")
	}
	if b[0] != chunkVersion {
		return nil, fmt.Errorf("chunk version %d", b[0])
	}
	b = b[1:]
	if len(b)%keySize != 0 {
		return nil, fmt.Errorf("chunk length %d is not a multiple of %d", len(b), keySize)
	}
	keys := make([]Key, len(b)/keySize)
	for i := range keys {
		copy(keys[i][:], b[i*keySize:])
	}
	return keys, nil
}

package checkpoint

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// memClient is a storage client whose writes can be made to fail.
type memClient struct {
	mu   sync.Mutex
	data map[string][]byte
	fail bool
}

func newMem() *memClient { return &memClient{data: map[string][]byte{}} }

func (m *memClient) Get(_ context.Context, k string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data[k], nil
}
func (m *memClient) Set(ctx context.Context, k string, v []byte) error {
	return m.Batch(ctx, storage.SetOperation(k, v))
}
func (m *memClient) Delete(ctx context.Context, k string) error {
	return m.Batch(ctx, storage.DeleteOperation(k))
}
func (m *memClient) Close(context.Context) error { return nil }
func (m *memClient) Batch(_ context.Context, ops ...*storage.Operation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("disk full")
	}
	for _, op := range ops {
		switch op.Type {
		case storage.Set:
			m.data[op.Key] = op.Value
		case storage.Delete:
			delete(m.data, op.Key)
		case storage.Get:
			op.Value = m.data[op.Key]
		}
	}
	return nil
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func TestCommitSurvivesReload(t *testing.T) {
	ctx := context.Background()
	mem := newMem()
	s, err := Load(ctx, mem, "p")
	require.NoError(t, err)
	require.True(t, s.State().Start.IsZero())
	s.SetStart(t0)
	require.Equal(t, t0, s.QueryStart(time.Minute), "before any record, queries start at Start")

	require.NoError(t, s.Commit(ctx, []Key{KeyOf("a"), KeyOf("b")}, t0.Add(time.Minute), t0.Add(time.Minute), 10*time.Minute))
	require.NoError(t, s.Commit(ctx, []Key{KeyOf("c")}, t0.Add(2*time.Minute), t0.Add(2*time.Minute), 10*time.Minute))

	re, err := Load(ctx, mem, "p")
	require.NoError(t, err)
	require.Equal(t, t0.Add(2*time.Minute), re.State().Watermark)
	require.Equal(t, t0, re.State().Start)
	for _, id := range []string{"a", "b", "c"} {
		require.True(t, re.Seen(KeyOf(id)), id)
	}
	require.False(t, re.Seen(KeyOf("d")))
	require.Equal(t, t0.Add(time.Minute), re.QueryStart(time.Minute), "watermark − lookback")
	require.Equal(t, t0, re.QueryStart(10*time.Minute), "never before where collection started")
}

func TestPruneDropsKeysOutsideTheLookback(t *testing.T) {
	ctx := context.Background()
	mem := newMem()
	s, _ := Load(ctx, mem, "p")
	s.SetStart(t0)
	require.NoError(t, s.Commit(ctx, []Key{KeyOf("old")}, t0, t0, 5*time.Minute))
	require.NoError(t, s.Commit(ctx, []Key{KeyOf("new")}, t0.Add(10*time.Minute), t0.Add(10*time.Minute), 5*time.Minute))
	require.False(t, s.Seen(KeyOf("old")), "older than watermark − lookback: no query can return it again")
	require.True(t, s.Seen(KeyOf("new")))
	require.Nil(t, mem.data["p/seen/0"], "its chunk is deleted from storage")
	require.NotNil(t, mem.data["p/seen/1"])
	require.Len(t, s.State().Chunks, 1)
}

func TestWatermarkNeverMovesBack(t *testing.T) {
	ctx := context.Background()
	s, _ := Load(ctx, newMem(), "p")
	s.SetStart(t0)
	require.NoError(t, s.Commit(ctx, nil, time.Time{}, t0.Add(time.Hour), time.Minute))
	require.NoError(t, s.Commit(ctx, []Key{KeyOf("late")}, t0, t0, time.Minute))
	require.Equal(t, t0.Add(time.Hour), s.State().Watermark)
}

func TestFailedWriteIsRetriedAndKeepsMemory(t *testing.T) {
	ctx := context.Background()
	mem := newMem()
	s, _ := Load(ctx, mem, "p")
	s.SetStart(t0)
	mem.fail = true
	err := s.Commit(ctx, []Key{KeyOf("a")}, t0, t0, time.Minute)
	require.Error(t, err)
	require.True(t, s.Seen(KeyOf("a")), "delivered records stay deduplicated in this process")
	require.True(t, s.Dirty())
	mem.fail = false
	require.NoError(t, s.Flush(ctx))
	require.False(t, s.Dirty())
	re, err := Load(ctx, mem, "p")
	require.NoError(t, err)
	require.True(t, re.Seen(KeyOf("a")))
	require.Equal(t, t0, re.State().Watermark)
}

func TestCorruptStateIsReported(t *testing.T) {
	ctx := context.Background()
	for name, data := range map[string]map[string][]byte{
		"bad json":      {"p/state": []byte("{")},
		"newer version": {"p/state": []byte(`{"v":99}`)},
		"missing chunk": {"p/state": []byte(`{"v":1,"chunks":[{"n":0}]}`)},
		"bad chunk":     {"p/state": []byte(`{"v":1,"chunks":[{"n":0}]}`), "p/seen/0": {1, 2, 3}},
	} {
		mem := newMem()
		mem.data = data
		_, err := Load(ctx, mem, "p")
		require.ErrorIs(t, err, ErrCorrupt, name)
	}
}

func TestKeyOfSeparatesParts(t *testing.T) {
	require.NotEqual(t, KeyOf("ab", "c"), KeyOf("a", "bc"))
	require.Equal(t, KeyOf("x"), KeyOf("x"))
}

func TestPrunedHorizonSurvivesALargerLookback(t *testing.T) {
	ctx := context.Background()
	mem := newMem()
	s, _ := Load(ctx, mem, "p")
	s.SetStart(t0)
	require.NoError(t, s.Commit(ctx, []Key{KeyOf("old")}, t0.Add(time.Minute), t0.Add(time.Minute), 5*time.Minute))
	require.NoError(t, s.Commit(ctx, []Key{KeyOf("new")}, t0.Add(20*time.Minute), t0.Add(20*time.Minute), 5*time.Minute))
	require.False(t, s.Seen(KeyOf("old")), "pruned")

	re, err := Load(ctx, mem, "p")
	require.NoError(t, err)
	require.Equal(t, t0.Add(15*time.Minute), re.State().KeysFrom, "the pruned horizon is stored")
	// With lookback raised to an hour, the query and the dedup horizon stop where the keys end: the
	// pruned record cannot be read again, nor emitted.
	require.Equal(t, t0.Add(15*time.Minute), re.QueryStart(time.Hour))
	require.Equal(t, t0.Add(15*time.Minute), re.Horizon(time.Hour))
	// Once the position has moved an hour on, the larger lookback applies in full.
	re.CompleteRead(t0.Add(2 * time.Hour))
	require.Equal(t, t0.Add(time.Hour), re.QueryStart(time.Hour))
}

func TestCompleteReadMovesThePositionOfAnEmptyStream(t *testing.T) {
	ctx := context.Background()
	mem := newMem()
	s, _ := Load(ctx, mem, "p")
	s.SetStart(t0)
	s.CompleteRead(t0.Add(time.Hour))
	require.NoError(t, s.Flush(ctx))
	re, err := Load(ctx, mem, "p")
	require.NoError(t, err)
	require.True(t, re.State().Watermark.IsZero(), "no record, no watermark")
	require.Equal(t, t0.Add(time.Hour), re.Position())
	require.Equal(t, t0.Add(50*time.Minute), re.QueryStart(10*time.Minute))
	re.CompleteRead(t0.Add(30 * time.Minute))
	require.Equal(t, t0.Add(time.Hour), re.Position(), "never back")
}

func TestVersion1StateLoads(t *testing.T) {
	ctx := context.Background()
	mem := newMem()
	mem.data["p/state"] = []byte(`{"v":1,"start":"2026-01-01T00:00:00Z","watermark":"2026-01-01T01:00:00Z","chunks":[{"n":0,"newest":"2026-01-01T01:00:00Z"}],"next_chunk":1}`)
	mem.data["p/seen/0"] = encodeChunk([]Key{KeyOf("a")})
	s, err := Load(ctx, mem, "p")
	require.NoError(t, err)
	require.True(t, s.Seen(KeyOf("a")))
	require.True(t, s.State().KeysFrom.IsZero())
	require.Equal(t, time.Date(2026, 1, 1, 0, 50, 0, 0, time.UTC), s.Horizon(10*time.Minute), "position − lookback, as version 1 pruned")
	require.NoError(t, s.Commit(ctx, nil, time.Time{}, time.Time{}, 10*time.Minute))
	require.Contains(t, string(mem.data["p/state"]), `"v":2`, "written back in the current version")
}

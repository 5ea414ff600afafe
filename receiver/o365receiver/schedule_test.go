package o365receiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScheduleCoolsDownAndRecovers(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.MaxCooldown = time.Hour
	cfg.ForbiddenRetryInterval = 2 * time.Hour
	tk := &task{r: &o365Receiver{cfg: cfg}, interval: 5 * time.Minute}
	tests := []struct {
		kind     string
		failures int
		delay    time.Duration
		state    string
	}{
		{"", 0, 5 * time.Minute, StateOK},
		{"transient", 1, 5 * time.Minute, StateFailing},
		{"transient", 2, 5 * time.Minute, StateFailing},
		{"transient", 3, 10 * time.Minute, StateCoolingDown},
		{"auth", 4, 20 * time.Minute, StateCoolingDown},
		{"transient", 5, 40 * time.Minute, StateCoolingDown},
		{"transient", 6, time.Hour, StateCoolingDown},
		{"transient", 60, time.Hour, StateCoolingDown},
		{"permission", 1, 2 * time.Hour, StateCoolingDown},
		{"licence", 1, 2 * time.Hour, StateCoolingDown},
	}
	for _, tt := range tests {
		delay, state := tk.schedule(tt.kind, tt.failures)
		assert.Equal(t, tt.delay, delay, "%s × %d", tt.kind, tt.failures)
		assert.Equal(t, tt.state, state, "%s × %d", tt.kind, tt.failures)
	}
}

func TestSplitRange(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	spans := splitRange(from, from.Add(150*time.Minute), time.Hour)
	require.Len(t, spans, 3, "one step each, the last takes the rest")
	require.Equal(t, []time.Duration{time.Hour, time.Hour, 30 * time.Minute},
		[]time.Duration{spans[0].to.Sub(spans[0].from), spans[1].to.Sub(spans[1].from), spans[2].to.Sub(spans[2].from)})
	require.Equal(t, from, spans[0].from)
	for i := 1; i < len(spans); i++ {
		require.Equal(t, spans[i-1].to, spans[i].from, "consecutive, no gap")
	}
	far := splitRange(from, from.Add(1000*time.Hour), time.Minute)
	require.Len(t, far, maxSplit, "bounded")
	require.Equal(t, from.Add(1000*time.Hour), far[maxSplit-1].to, "the last span takes what is left")
	require.Len(t, splitRange(from, from.Add(time.Minute), time.Hour), 1)
}

func TestInsertRestMergesASpill(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	a, b, c := &span{from: at(0), to: at(10)}, &span{from: at(10), to: at(20)}, &span{from: at(20), to: at(30)}

	a.rest = []*span{{from: at(9), to: at(10)}} // a overflowed by a minute's worth
	spans := insertRest([]*span{a, b, c}, a)
	require.Equal(t, []*span{a, b, c}, spans, "no extra span")
	require.Equal(t, at(9), b.from, "the spill joins the next span")

	b.started = true
	b.rest = []*span{{from: at(19), to: at(20)}}
	c.started = true // already in flight: cannot grow
	spans = insertRest(spans, b)
	require.Len(t, spans, 4)
	require.Equal(t, at(19), spans[2].from)
	require.Same(t, c, spans[3])
}

package o365receiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

const policies = "conditional_access_policies"

// startSnapshotReceiver collects tenant 1's conditional access policies (n of them, listed 100 per
// page by the simulator), polled only when triggered after the first poll, which it waits for.
func startSnapshotReceiver(t *testing.T, seed uint64, n int) (*graphsimtest.Sim, *o365Receiver, *consumertest.LogsSink) {
	t.Helper()
	sim := graphsimtest.Start(t, graphsim.Config{Seed: seed, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{policies: {Count: n}}),
	}})
	cfg := simConfig(sim, 1)
	cfg.PollInterval = time.Hour
	cfg.RetryOnFailure.MaxElapsedTime = time.Nanosecond // a failed request fails the poll at once
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{policies: {}}
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, cfg, sink)
	require.Eventually(t, func() bool { return !snapshotTask(t, r).Status().LastSuccess.IsZero() }, 30*time.Second, 10*time.Millisecond)
	return sim, r, sink
}

func snapshotTask(t *testing.T, r *o365Receiver) *task {
	tasks, err := r.tasksOf("tenant1", policies)
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	return tasks[0]
}

// pollOnce triggers a poll of the snapshot and waits for it to end; it returns the stream's status.
func pollOnce(t *testing.T, r *o365Receiver) StreamStatus {
	t.Helper()
	tk := snapshotTask(t, r)
	before := tk.Status().LastPollEnd
	require.True(t, tk.Trigger())
	require.Eventually(t, func() bool { return tk.Status().LastPollEnd.After(before) }, 30*time.Second, 5*time.Millisecond)
	return tk.Status()
}

// changes lists, per id, the o365.change labels the sink received, in order.
func changes(sink *consumertest.LogsSink) map[string][]string {
	out := map[string][]string{}
	for _, rec := range records(sink) {
		out[rec.id] = append(out[rec.id], rec.change)
	}
	return out
}

// TestSnapshotFailedHalfWayLabelsEachChangeOnce: a read that fails at its third page, after the
// consumer accepted the first two, is retried; the changes on those two pages are not labelled again.
func TestSnapshotFailedHalfWayLabelsEachChangeOnce(t *testing.T) {
	sim, r, sink := startSnapshotReceiver(t, 61, 250)
	tenant := graphsimtest.TenantID(1)
	items := sim.Items(tenant, policies)
	require.Len(t, changes(sink), 250)

	// Changes on the first page (delivered before the failure) and on the last (after it).
	byID := map[string]map[string]any{}
	for _, rec := range records(sink) {
		byID[rec.id] = rec.body.AsRaw()
	}
	early, late := items[3], items[240]
	for _, id := range []string{early, late} {
		byID[id]["state"] = "disabled"
		require.NoError(t, sim.SetItem(tenant, policies, byID[id]))
	}
	added := map[string]any{"id": "11111111-aaaa-4bbb-8ccc-000000000061", "displayName": "New policy", "state": "enabled"}
	require.NoError(t, sim.SetItem(tenant, policies, added))
	removed := items[120]
	require.NoError(t, sim.RemoveItem(tenant, policies, removed))

	sink.Reset()
	sim.FailNext(graphsim.Fault{Kind: "status", Status: 500, Path: "conditionalAccess", After: 2})
	st := pollOnce(t, r)
	require.NotEmpty(t, st.LastError, "the read failed at its third page")
	require.Equal(t, 200, sink.LogRecordCount(), "two pages were delivered")
	st = pollOnce(t, r)
	require.Empty(t, st.LastError)

	got := changes(sink)
	require.Equal(t, []string{ChangeModified, ChangeUnchanged}, got[early], "labelled modified once, then unchanged")
	require.Equal(t, []string{ChangeModified}, got[late])
	require.Equal(t, []string{ChangeAdded}, got[added["id"].(string)])
	require.Equal(t, []string{ChangeRemoved}, got[removed], "removed once, after the complete read")
	for id, labels := range got {
		for _, c := range labels {
			if id != early && id != late && id != added["id"] && id != removed {
				require.Equal(t, ChangeUnchanged, c, id)
			}
		}
	}

	// The next snapshot finds nothing new.
	sink.Reset()
	require.Empty(t, pollOnce(t, r).LastError)
	for id, labels := range changes(sink) {
		require.Equal(t, []string{ChangeUnchanged}, labels, id)
	}
}

// TestSnapshotBaselineFailedHalfWayIsNotRepeated: the first snapshot fails half-way; the retry
// completes the baseline, labelling what was delivered already unchanged.
func TestSnapshotBaselineFailedHalfWayIsNotRepeated(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 62, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{policies: {Count: 250}}),
	}})
	sim.FailNext(graphsim.Fault{Kind: "status", Status: 500, Path: "conditionalAccess", After: 1})
	cfg := simConfig(sim, 1)
	cfg.PollInterval = time.Hour
	cfg.RetryOnFailure.MaxElapsedTime = time.Nanosecond
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{policies: {}}
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, cfg, sink)
	require.Eventually(t, func() bool { return snapshotTask(t, r).Status().ConsecutiveFailures == 1 }, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, 100, sink.LogRecordCount())
	require.Empty(t, pollOnce(t, r).LastError)

	got := changes(sink)
	require.Equal(t, 250, len(got))
	baseline := 0
	for id, labels := range got {
		if len(labels) == 2 {
			require.Equal(t, []string{ChangeBaseline, ChangeUnchanged}, labels, id)
			continue
		}
		require.Equal(t, []string{ChangeBaseline}, labels, id)
		baseline++
	}
	require.Equal(t, 150, baseline, "the rest is baseline once")
}

// TestSnapshotShrunkenReadHoldsRemovals: a complete read that misses many items — the listing ended
// early without a nextLink, or a page lacked items — reports none of them removed; the next read lists
// them again (unchanged). Items really removed in bulk are reported removed once a second read
// confirms it; a single removal is reported at once.
func TestSnapshotShrunkenReadHoldsRemovals(t *testing.T) {
	sim, r, sink := startSnapshotReceiver(t, 63, 250)
	tenant := graphsimtest.TenantID(1)
	items := sim.Items(tenant, policies)

	for _, fault := range []graphsim.Fault{
		{Kind: "no_next", Path: "conditionalAccess", After: 1},      // 200 of 250 items listed
		{Kind: "drop_items", Share: 0.5, Path: "conditionalAccess"}, // 200 of 250
	} {
		t.Run(fault.Kind, func(t *testing.T) {
			sink.Reset()
			sim.FailNext(fault)
			require.Empty(t, pollOnce(t, r).LastError)
			got := changes(sink)
			require.Equal(t, 200, len(got), "the read listed 200 items")
			for id, labels := range got {
				require.Equal(t, []string{ChangeUnchanged}, labels, "no removal for %s", id)
			}

			sink.Reset()
			require.Empty(t, pollOnce(t, r).LastError)
			got = changes(sink)
			require.Equal(t, 250, len(got), "the next read lists them again")
			for id, labels := range got {
				require.Equal(t, []string{ChangeUnchanged}, labels, id)
			}
		})
	}

	t.Run("bulk removal confirmed by the next read", func(t *testing.T) {
		for _, id := range items[:40] {
			require.NoError(t, sim.RemoveItem(tenant, policies, id))
		}
		sink.Reset()
		require.Empty(t, pollOnce(t, r).LastError)
		got := changes(sink)
		require.Equal(t, 210, len(got))
		for _, id := range items[:40] {
			require.NotContains(t, got, id, "held: one read does not prove 40 removals")
		}
		sink.Reset()
		require.Empty(t, pollOnce(t, r).LastError)
		got = changes(sink)
		require.Equal(t, 250, len(got))
		for _, id := range items[:40] {
			require.Equal(t, []string{ChangeRemoved}, got[id], id)
		}
	})

	t.Run("single removal at once", func(t *testing.T) {
		require.NoError(t, sim.RemoveItem(tenant, policies, items[100]))
		sink.Reset()
		require.Empty(t, pollOnce(t, r).LastError)
		got := changes(sink)
		require.Equal(t, 210, len(got))
		require.Equal(t, []string{ChangeRemoved}, got[items[100]])
	})
	require.Len(t, sim.Items(tenant, policies), 209)
}

// TestSnapshotPartialSurvivesRestart: what a read that failed half-way delivered is in storage, so a
// restarted collector continues the labels instead of starting the baseline again.
func TestSnapshotPartialSurvivesRestart(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 64, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{policies: {Count: 250}}),
	}})
	sim.FailNext(graphsim.Fault{Kind: "status", Status: 500, Path: "conditionalAccess", After: 1})
	dir := t.TempDir()
	run := func(until func(*o365Receiver) bool) *consumertest.LogsSink {
		id, ext := startFileStorage(t, dir)
		cfg := simConfig(sim, 1)
		cfg.PollInterval = time.Hour
		cfg.RetryOnFailure.MaxElapsedTime = time.Nanosecond
		cfg.Storage = &id
		cfg.Tenants[0].Datasets = map[string]DatasetConfig{policies: {}}
		set := receivertest.NewNopSettings(NewFactory().Type())
		set.ID = component.MustNewID("o365")
		sink := new(consumertest.LogsSink)
		r, err := newReceiver(set, cfg, sink)
		require.NoError(t, err)
		require.NoError(t, r.Start(context.Background(), extensionHost{componenttest.NewNopHost(), map[component.ID]component.Component{id: ext}}))
		require.Eventually(t, func() bool { return until(r) }, 30*time.Second, 10*time.Millisecond)
		require.NoError(t, r.Shutdown(context.Background()))
		require.NoError(t, ext.Shutdown(context.Background()))
		return sink
	}
	first := run(func(r *o365Receiver) bool { return snapshotTask(t, r).Status().ConsecutiveFailures == 1 })
	require.Equal(t, 100, first.LogRecordCount(), "the first page, then the failure")
	second := run(func(r *o365Receiver) bool { return !snapshotTask(t, r).Status().LastSuccess.IsZero() })
	delivered := changes(first)
	got := changes(second)
	require.Equal(t, 250, len(got))
	for id, labels := range got {
		want := ChangeBaseline
		if delivered[id] != nil {
			want = ChangeUnchanged
		}
		require.Equal(t, []string{want}, labels, id)
	}
}

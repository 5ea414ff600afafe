package sqlstorageextension

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-o365/otelcol-o365/internal/leasing"
)

// Leases are meant for Postgres (replicas on several machines); SQLite implements them too, for
// several collectors on one machine sharing a file, so every lease test runs on both.

// Only one of two replicas gets a resource; renewal keeps the generation; release frees it at once and
// the next owner gets a higher generation; releasing a lease that is no longer ours is refused.
func TestLeaseExclusiveRenewRelease(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		cfg := testConfig(t, driver)
		cfg.Lease.TTL = time.Minute // nothing in this test waits for expiry
		a, telA := startExtensionWithTelemetry(t, cfg, "replica-a")
		b := startExtension(t, cfg, "replica-b")

		la, ok, err := a.TryAcquire(ctx, "o365/tenant-1")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, leasing.Lease{Resource: "o365/tenant-1", Owner: "replica-a", Generation: 1, Expires: la.Expires, Deadline: la.Deadline}, la)
		assert.True(t, la.Held(time.Now()))

		lb, ok, err := b.TryAcquire(ctx, "o365/tenant-1")
		require.NoError(t, err)
		require.False(t, ok, "another replica holds it")
		assert.Equal(t, "replica-a", lb.Owner, "a refusal says who holds the lease")
		assert.Equal(t, int64(1), lb.Generation)
		assert.False(t, lb.Held(time.Now()), "a refused lease is not held")

		other, ok, err := b.TryAcquire(ctx, "o365/tenant-2")
		require.NoError(t, err)
		require.True(t, ok, "resources are independent")
		assert.Equal(t, int64(1), other.Generation)

		renewed, ok, err := a.TryAcquire(ctx, "o365/tenant-1")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, int64(1), renewed.Generation, "a renewal keeps the generation")
		assert.False(t, renewed.Expires.Before(la.Expires), "a renewal moves the expiry forward")

		require.NoError(t, a.Release(ctx, renewed))
		lb, ok, err = b.TryAcquire(ctx, "o365/tenant-1")
		require.NoError(t, err)
		require.True(t, ok, "a released lease is free at once")
		assert.Equal(t, int64(2), lb.Generation, "ownership changed hands: new generation")
		assert.Equal(t, "replica-b", lb.Owner)

		require.ErrorIs(t, a.Release(ctx, renewed), leasing.ErrLeaseLost, "releasing a lease that is no longer ours")
		_, ok, err = a.TryAcquire(ctx, "o365/tenant-1")
		require.NoError(t, err)
		assert.False(t, ok)

		assert.Equal(t, map[string]int64{"acquired": 1, "renewed": 1, "released": 1, "refused": 1},
			sumByAttributes(t, telA, "otelcol_sql_storage_lease_events", "event"))
	})
}

// The stale replica: A holds the lease and commits a watermark, then pauses (stops renewing).
// After the TTL, B takes over with a higher generation, reads A's last commit and commits its own.
// When A wakes up, its fenced writes fail with ErrLeaseLost and change nothing: it cannot commit an
// older watermark. A had also passed its local deadline before B took over.
func TestLeaseTakeoverFencesStaleReplica(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		cfg := testConfig(t, driver) // lease.ttl 1s
		a, telA := startExtensionWithTelemetry(t, cfg, "replica-a")
		b, telB := startExtensionWithTelemetry(t, cfg, "replica-b")
		const tenant = "o365/receiver/contoso"

		la, ok, err := a.TryAcquire(ctx, tenant)
		require.NoError(t, err)
		require.True(t, ok)
		ca, err := a.FencedClient(ctx, component.KindReceiver, receiverID, "", la)
		require.NoError(t, err)
		require.NoError(t, ca.Batch(ctx, storage.SetOperation("watermark", []byte("2024-01-01T00:10")), storage.SetOperation("seen/1", []byte("a"))))

		// A pauses. B retries at its renew interval until the lease has expired.
		var lb leasing.Lease
		require.Eventually(t, func() bool {
			lb, ok, err = b.TryAcquire(ctx, tenant)
			require.NoError(t, err)
			return ok
		}, 15*time.Second, cfg.Lease.RenewInterval/3)
		assert.False(t, la.Held(time.Now()), "A's local deadline passed before B could take over")
		assert.Greater(t, lb.Generation, la.Generation)
		assert.False(t, lb.Expires.Before(la.Expires))

		cb, err := b.FencedClient(ctx, component.KindReceiver, receiverID, "", lb)
		require.NoError(t, err)
		w, err := cb.Get(ctx, "watermark")
		require.NoError(t, err)
		assert.Equal(t, "2024-01-01T00:10", string(w), "the new owner reads the old owner's last commit")
		require.NoError(t, cb.Batch(ctx, storage.SetOperation("watermark", []byte("2024-01-01T00:20")), storage.SetOperation("seen/2", []byte("b"))))

		// A wakes up and tries to commit what it fetched before pausing.
		err = ca.Batch(ctx, storage.SetOperation("watermark", []byte("2024-01-01T00:15")), storage.SetOperation("seen/3", []byte("a-late")))
		require.ErrorIs(t, err, leasing.ErrLeaseLost)
		require.ErrorIs(t, ca.Set(ctx, "watermark", []byte("2024-01-01T00:15")), leasing.ErrLeaseLost)
		require.ErrorIs(t, ca.Delete(ctx, "seen/2"), leasing.ErrLeaseLost)
		require.ErrorIs(t, ca.(storage.Walker).Walk(ctx, func(string, []byte) ([]*storage.Operation, error) {
			return []*storage.Operation{storage.DeleteOperation("watermark")}, nil
		}), leasing.ErrLeaseLost)
		assertValues(t, cb, map[string][]byte{"watermark": []byte("2024-01-01T00:20"), "seen/1": []byte("a"), "seen/2": []byte("b"), "seen/3": nil})
		v, err := ca.Get(ctx, "watermark")
		require.NoError(t, err, "reads are not fenced")
		assert.Equal(t, "2024-01-01T00:20", string(v))

		_, ok, err = a.TryAcquire(ctx, tenant)
		require.NoError(t, err)
		assert.False(t, ok, "A cannot renew a lease B took over")
		require.ErrorIs(t, a.Release(ctx, la), leasing.ErrLeaseLost)

		// B's fenced client stays valid across renewals.
		_, ok, err = b.TryAcquire(ctx, tenant)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, cb.Set(ctx, "watermark", []byte("2024-01-01T00:30")))

		_, err = telB.GetMetric("otelcol_sql_storage_operation_errors")
		require.ErrorContains(t, err, "not found", "B had no errors")
		assert.Equal(t, map[string]int64{"batch/lease_lost": 1, "set/lease_lost": 1, "delete/lease_lost": 1, "walk/lease_lost": 1, "lease_release/lease_lost": 1},
			sumByAttributes(t, telA, "otelcol_sql_storage_operation_errors", "operation", "error.type"))
		assert.Equal(t, int64(4), sumByAttributes(t, telA, "otelcol_sql_storage_lease_events", "event")["lost"])
	})
}

// A lease that is renewed before it expires is kept: B cannot take it even after the first expiry.
func TestLeaseRenewalKeepsIt(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		cfg := testConfig(t, driver)
		cfg.Lease.TTL = 2 * time.Second
		a := startExtension(t, cfg, "replica-a")
		b := startExtension(t, cfg, "replica-b")

		first, ok, err := a.TryAcquire(ctx, "r")
		require.NoError(t, err)
		require.True(t, ok)
		// Renew late (even a renewal delayed past the expiry succeeds: nobody else tried), so that the
		// renewed expiry is well after the first one.
		time.Sleep(cfg.Lease.TTL * 3 / 4)
		renewed, ok, err := a.TryAcquire(ctx, "r")
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, renewed.Expires.After(first.Expires))
		// Wait past the first expiry (the only wall-clock wait in this test).
		time.Sleep(time.Until(first.Deadline) + 200*time.Millisecond)

		holder, ok, err := b.TryAcquire(ctx, "r")
		require.NoError(t, err)
		assert.False(t, ok, "the renewed lease is still A's")
		assert.Equal(t, "replica-a", holder.Owner)
		c, err := a.FencedClient(ctx, component.KindReceiver, receiverID, "", first)
		require.NoError(t, err)
		require.NoError(t, c.Set(ctx, "k", []byte("v")), "a lease of the same generation still fences in")
	})
}

// Many replicas racing for many resources: each resource goes to exactly one of them.
func TestLeaseConcurrentAcquire(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		cfg := testConfig(t, driver)
		cfg.Lease.TTL = time.Minute
		const replicas, resources = 4, 20
		exts := make([]*sqlStorage, replicas)
		for i := range exts {
			exts[i] = startExtension(t, cfg, fmt.Sprintf("replica-%d", i))
		}
		var mu sync.Mutex
		winners := map[string][]string{}
		var wg sync.WaitGroup
		for _, e := range exts {
			wg.Go(func() {
				for r := range resources {
					res := fmt.Sprintf("tenant-%d", r)
					l, ok, err := e.TryAcquire(ctx, res)
					if !assert.NoError(t, err) {
						return
					}
					if ok {
						mu.Lock()
						winners[res] = append(winners[res], l.Owner)
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		require.Len(t, winners, resources)
		for res, w := range winners {
			assert.Len(t, w, 1, "resource %s won by %v", res, w)
		}
	})
}

// A fenced client reads and writes the same rows as the plain client of the same component.
func TestFencedClientSharesData(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		cfg := testConfig(t, driver)
		e := startExtension(t, cfg, "replica-a")
		plain := getClient(t, e, component.KindReceiver, receiverID, "tenant")
		require.NoError(t, plain.Set(ctx, "watermark", []byte("w0")))
		l, ok, err := e.TryAcquire(ctx, "r")
		require.NoError(t, err)
		require.True(t, ok)
		fenced, err := e.FencedClient(ctx, component.KindReceiver, receiverID, "tenant", l)
		require.NoError(t, err)
		v, err := fenced.Get(ctx, "watermark")
		require.NoError(t, err)
		assert.Equal(t, "w0", string(v))
		require.NoError(t, fenced.Set(ctx, "watermark", []byte("w1")))
		assertValues(t, plain, map[string][]byte{"watermark": []byte("w1")})

		l.Owner = "someone-else"
		_, err = e.FencedClient(ctx, component.KindReceiver, receiverID, "tenant", l)
		require.ErrorIs(t, err, errNotOurLease)
	})
}

func TestReplicaIDDefault(t *testing.T) {
	a, b := defaultReplicaID(), defaultReplicaID()
	assert.NotEqual(t, a, b, "unique per process start")
	assert.Regexp(t, `^.+-\d+-[0-9a-f]{8}$`, a)
}

// sumByAttributes reads a counter as a map from its attribute values (joined by "/") to its value.
func sumByAttributes(t *testing.T, tel *componenttest.Telemetry, name string, keys ...string) map[string]int64 {
	t.Helper()
	got, err := tel.GetMetric(name)
	require.NoError(t, err)
	out := map[string]int64{}
	for _, dp := range got.Data.(metricdata.Sum[int64]).DataPoints {
		var parts []string
		for _, k := range keys {
			v, _ := dp.Attributes.Value(attribute.Key(k))
			parts = append(parts, v.AsString())
		}
		out[strings.Join(parts, "/")] += dp.Value
	}
	return out
}

// A fenced write that passed its lease check holds the lease row until it commits: a takeover that
// arrives meanwhile waits for it, and the new owner then reads that write. (Without the lock, the old
// owner's write could land after the new owner read the state — the lost update fencing exists to
// prevent.)
func TestFencedCommitBlocksTakeover(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		cfg := testConfig(t, driver)
		a := startExtension(t, cfg, "replica-a")
		b := startExtension(t, cfg, "replica-b")
		la, ok, err := a.TryAcquire(ctx, "r")
		require.NoError(t, err)
		require.True(t, ok)
		ca, err := a.FencedClient(ctx, component.KindReceiver, receiverID, "", la)
		require.NoError(t, err)
		// Wait until the lease has expired on the database's clock (same machine, same clock).
		time.Sleep(time.Until(la.Expires) + 50*time.Millisecond)

		type result struct {
			l   leasing.Lease
			ok  bool
			err error
		}
		takeover := make(chan result, 1)
		err = ca.(*client).run(ctx, "batch", "", true, func(txCtx context.Context, q querier) error {
			// The lease check has passed (expired but not taken over): now B tries to take over.
			go func() {
				l, ok, err := b.TryAcquire(ctx, "r")
				takeover <- result{l, ok, err}
			}()
			select {
			case r := <-takeover:
				t.Errorf("the takeover did not wait for the fenced commit: %+v", r)
				takeover <- r
			case <-time.After(300 * time.Millisecond):
			}
			return ca.(*client).set(txCtx, q, "watermark", []byte("from A"))
		})
		require.NoError(t, err, "A's write commits: nobody had taken the lease over when it was checked")
		r := <-takeover
		require.NoError(t, r.err)
		require.True(t, r.ok)
		assert.Greater(t, r.l.Generation, la.Generation)
		cb, err := b.FencedClient(ctx, component.KindReceiver, receiverID, "", r.l)
		require.NoError(t, err)
		assertValues(t, cb, map[string][]byte{"watermark": []byte("from A")})
		require.ErrorIs(t, ca.Set(ctx, "watermark", []byte("A again")), leasing.ErrLeaseLost)
	})
}

// Holders lists the live leases under a prefix, whoever holds them: not released ones, not other
// prefixes (LIKE wildcards in the prefix are literal), not expired ones.
func TestLeaseHolders(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		cfg := testConfig(t, driver)
		cfg.Lease.TTL = time.Second
		a := startExtension(t, cfg, "replica-a")
		b := startExtension(t, cfg, "replica-b")
		la, ok, err := a.TryAcquire(ctx, "o365/x/member/a")
		require.NoError(t, err)
		require.True(t, ok)
		_, ok, err = b.TryAcquire(ctx, "o365/x/member/b")
		require.NoError(t, err)
		require.True(t, ok)
		_, _, err = b.TryAcquire(ctx, "o365/x_other/member/c") // '_' must not match as a wildcard
		require.NoError(t, err)
		lc, _, err := a.TryAcquire(ctx, "o365/x/member/c")
		require.NoError(t, err)
		require.NoError(t, a.Release(ctx, lc))

		holders, err := b.Holders(ctx, "o365/x/member/")
		require.NoError(t, err)
		require.Len(t, holders, 2)
		assert.Equal(t, []string{"replica-a", "replica-b"}, []string{holders[0].Owner, holders[1].Owner})
		assert.Equal(t, la.Resource, holders[0].Resource)

		require.Eventually(t, func() bool {
			h, err := b.Holders(ctx, "o365/x/member/")
			return err == nil && len(h) == 0
		}, 5*time.Second, 50*time.Millisecond, "expired leases are not listed")
	})
}

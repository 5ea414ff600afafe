package sqlstorageextension

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// The storage API contract (storage.Client's documentation), run against both drivers.
func TestStorageContract(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, e *sqlStorage, c *client)
	}{
		{"get of a missing key is (nil, nil)", func(t *testing.T, _ *sqlStorage, c *client) {
			v, err := c.Get(ctx, "missing")
			require.NoError(t, err)
			assert.Nil(t, v)
		}},
		{"set then get, overwrite", func(t *testing.T, _ *sqlStorage, c *client) {
			require.NoError(t, c.Set(ctx, "k", []byte("v1")))
			v, err := c.Get(ctx, "k")
			require.NoError(t, err)
			assert.Equal(t, []byte("v1"), v)
			require.NoError(t, c.Set(ctx, "k", []byte("v2")))
			v, err = c.Get(ctx, "k")
			require.NoError(t, err)
			assert.Equal(t, []byte("v2"), v)
		}},
		{"an empty value is stored, not missing", func(t *testing.T, _ *sqlStorage, c *client) {
			require.NoError(t, c.Set(ctx, "empty", []byte{}))
			require.NoError(t, c.Set(ctx, "nil", nil))
			for _, k := range []string{"empty", "nil"} {
				v, err := c.Get(ctx, k)
				require.NoError(t, err)
				assert.NotNil(t, v, k)
				assert.Empty(t, v, k)
			}
		}},
		{"binary values and odd keys round-trip", func(t *testing.T, _ *sqlStorage, c *client) {
			value := []byte{0, 1, 2, 0xff, 0, '\'', '"', '\\'}
			for _, k := range []string{"", "with space", "a/b/c", "ключ", "'; DROP TABLE x; --", "%_"} {
				require.NoError(t, c.Set(ctx, k, value), k)
				v, err := c.Get(ctx, k)
				require.NoError(t, err)
				assert.Equal(t, value, v, k)
			}
			v, err := c.Get(ctx, "%")
			require.NoError(t, err)
			assert.Nil(t, v, "keys are compared exactly, not as patterns")
		}},
		{"delete, and delete of a missing key", func(t *testing.T, _ *sqlStorage, c *client) {
			require.NoError(t, c.Set(ctx, "k", []byte("v")))
			require.NoError(t, c.Delete(ctx, "k"))
			v, err := c.Get(ctx, "k")
			require.NoError(t, err)
			assert.Nil(t, v)
			require.NoError(t, c.Delete(ctx, "k"))
			require.NoError(t, c.Delete(ctx, "never-set"))
		}},
		{"batch applies in order and fills gets in place", func(t *testing.T, _ *sqlStorage, c *client) {
			require.NoError(t, c.Set(ctx, "old", []byte("o")))
			getOld, getA1, getA2, getMissing := storage.GetOperation("old"), storage.GetOperation("a"), storage.GetOperation("a"), storage.GetOperation("missing")
			getMissing.Value = []byte("stale")
			require.NoError(t, c.Batch(ctx,
				getOld,
				storage.SetOperation("a", []byte("1")),
				getA1,
				storage.DeleteOperation("a"),
				getA2,
				storage.SetOperation("b", []byte("2")),
				storage.DeleteOperation("old"),
				getMissing,
			))
			assert.Equal(t, []byte("o"), getOld.Value)
			assert.Equal(t, []byte("1"), getA1.Value, "a get sees the batch's earlier set")
			assert.Nil(t, getA2.Value, "a get sees the batch's earlier delete")
			assert.Nil(t, getMissing.Value, "a get of a missing key sets nil")
			assertValues(t, c, map[string][]byte{"a": nil, "b": []byte("2"), "old": nil})
			require.NoError(t, c.Batch(ctx), "an empty batch is fine")
		}},
		{"a failing batch applies nothing", func(t *testing.T, _ *sqlStorage, c *client) {
			require.NoError(t, c.Set(ctx, "x", []byte("1")))
			require.NoError(t, c.Set(ctx, "z", []byte("keep")))
			err := c.Batch(ctx,
				storage.SetOperation("x", []byte("2")),
				storage.SetOperation("y", []byte("new")),
				storage.DeleteOperation("z"),
				&storage.Operation{Key: "bad", Type: storage.OpType(99)},
			)
			require.ErrorContains(t, err, "unknown operation type 99")
			assertValues(t, c, map[string][]byte{"x": []byte("1"), "y": nil, "z": []byte("keep")})
		}},
		{"a cancelled batch applies nothing", func(t *testing.T, _ *sqlStorage, c *client) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			require.Error(t, c.Batch(cctx, storage.SetOperation("x", []byte("1")), storage.SetOperation("y", []byte("2"))))
			assertValues(t, c, map[string][]byte{"x": nil, "y": nil})
		}},
		{"keys are isolated per component kind, id and storage name", func(t *testing.T, e *sqlStorage, c *client) {
			clients := map[string]*client{
				"receiver o365/a":          c,
				"receiver o365/b":          getClient(t, e, component.KindReceiver, otherID, ""),
				"receiver o365/a named":    getClient(t, e, component.KindReceiver, receiverID, "named"),
				"exporter o365/a":          getClient(t, e, component.KindExporter, receiverID, ""),
				"receiver o365 (no name)":  getClient(t, e, component.KindReceiver, component.MustNewID("o365"), ""),
				"receiver o365/a a/b name": getClient(t, e, component.KindReceiver, receiverID, "a/b"),
			}
			for name, cl := range clients {
				require.NoError(t, cl.Set(ctx, "shared-key", []byte(name)))
			}
			for name, cl := range clients {
				v, err := cl.Get(ctx, "shared-key")
				require.NoError(t, err)
				assert.Equal(t, name, string(v))
			}
			require.NoError(t, clients["receiver o365/b"].Delete(ctx, "shared-key"))
			require.NoError(t, clients["exporter o365/a"].Batch(ctx, storage.DeleteOperation("shared-key")))
			v, err := c.Get(ctx, "shared-key")
			require.NoError(t, err)
			assert.Equal(t, "receiver o365/a", string(v), "deletes by other components do not touch this one's key")
			var walked []string
			require.NoError(t, c.Walk(ctx, func(key string, _ []byte) ([]*storage.Operation, error) {
				walked = append(walked, key)
				return nil, nil
			}))
			assert.Equal(t, []string{"shared-key"}, walked, "walk sees only this client's keys")
		}},
		{"values of 1 MiB and more", func(t *testing.T, _ *sqlStorage, c *client) {
			big := make([]byte, 1<<20)
			_, _ = rand.Read(big)
			require.NoError(t, c.Set(ctx, "big", big))
			v, err := c.Get(ctx, "big")
			require.NoError(t, err)
			assert.True(t, bytes.Equal(big, v), "1 MiB value round-trips")
			ops := []*storage.Operation{}
			for i := range 3 {
				b := bytes.Repeat([]byte{byte(i)}, 3<<20/2)
				ops = append(ops, storage.SetOperation(fmt.Sprintf("big%d", i), b))
			}
			get := storage.GetOperation("big1")
			require.NoError(t, c.Batch(ctx, append(ops, get)...))
			assert.True(t, bytes.Equal(ops[1].Value, get.Value), "1.5 MiB values in one batch")
		}},
		{"concurrent clients", func(t *testing.T, e *sqlStorage, _ *client) {
			const workers, perWorker = 8, 25
			var wg sync.WaitGroup
			errs := make(chan error, workers*perWorker)
			for w := range workers {
				wg.Go(func() {
					cl, err := e.GetClient(ctx, component.KindReceiver, component.MustNewIDWithName("o365", fmt.Sprint(w)), "")
					if err != nil {
						errs <- err
						return
					}
					defer cl.Close(ctx)
					for i := range perWorker {
						key := fmt.Sprintf("k%d", i)
						if err := cl.Batch(ctx, storage.SetOperation(key, []byte(fmt.Sprintf("%d/%d", w, i))), storage.SetOperation("last", []byte(key))); err != nil {
							errs <- err
						}
						if v, err := cl.Get(ctx, key); err != nil || string(v) != fmt.Sprintf("%d/%d", w, i) {
							errs <- fmt.Errorf("worker %d get %s = %q, %v", w, key, v, err)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			for w := range workers {
				cl := getClient(t, e, component.KindReceiver, component.MustNewIDWithName("o365", fmt.Sprint(w)), "")
				want := map[string][]byte{"last": []byte(fmt.Sprintf("k%d", perWorker-1))}
				for i := range perWorker {
					want[fmt.Sprintf("k%d", i)] = []byte(fmt.Sprintf("%d/%d", w, i))
				}
				assertValues(t, cl, want)
			}
		}},
		{"walk visits keys in order and applies its operations atomically", func(t *testing.T, _ *sqlStorage, c *client) {
			for _, k := range []string{"b", "a", "c"} {
				require.NoError(t, c.Set(ctx, k, []byte("v"+k)))
			}
			var seen []string
			require.NoError(t, c.Walk(ctx, func(key string, value []byte) ([]*storage.Operation, error) {
				seen = append(seen, key+"="+string(value))
				if key == "b" {
					return []*storage.Operation{storage.DeleteOperation("b"), storage.SetOperation("d", []byte("vd"))}, storage.SkipAll
				}
				return nil, nil
			}))
			assert.Equal(t, []string{"a=va", "b=vb"}, seen)
			assertValues(t, c, map[string][]byte{"a": []byte("va"), "b": nil, "c": []byte("vc"), "d": []byte("vd")})

			boom := errors.New("boom")
			err := c.Walk(ctx, func(string, []byte) ([]*storage.Operation, error) {
				return []*storage.Operation{storage.DeleteOperation("a")}, boom
			})
			require.ErrorIs(t, err, boom)
			assertValues(t, c, map[string][]byte{"a": []byte("va")})
		}},
		{"a closed client fails, others keep working", func(t *testing.T, e *sqlStorage, c *client) {
			other := getClient(t, e, component.KindReceiver, receiverID, "")
			require.NoError(t, c.Close(ctx))
			require.ErrorIs(t, c.Set(ctx, "k", []byte("v")), errClientClosed)
			_, err := c.Get(ctx, "k")
			require.ErrorIs(t, err, errClientClosed)
			require.NoError(t, other.Set(ctx, "k", []byte("v")))
		}},
	}
	forEachDriver(t, func(t *testing.T, driver string) {
		cfg := testConfig(t, driver)
		e := startExtension(t, cfg, "")
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				// Each case gets its own component id, so that cases share the database but not keys.
				id := component.MustNewIDWithName("case", fmt.Sprint(i))
				c := getClient(t, e, component.KindReceiver, id, "")
				if tt.name == "keys are isolated per component kind, id and storage name" {
					c = getClient(t, e, component.KindReceiver, receiverID, "")
				}
				tt.run(t, e, c)
			})
		}
	})
}

func assertValues(t *testing.T, c storage.Client, want map[string][]byte) {
	t.Helper()
	for k, w := range want {
		v, err := c.Get(context.Background(), k)
		require.NoError(t, err)
		assert.Equal(t, w, v, "key %q", k)
	}
}

// State survives a restart of the extension (the schema is found, not recreated), and two extensions
// on the same database see the same data.
func TestStoragePersistsAcrossRestart(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		cfg := testConfig(t, driver)
		first, err := NewFactory().Create(ctx, extensionSettings(), cfg)
		require.NoError(t, err)
		require.NoError(t, first.Start(ctx, nil))
		c, err := first.(*sqlStorage).GetClient(ctx, component.KindReceiver, receiverID, "")
		require.NoError(t, err)
		require.NoError(t, c.Batch(ctx, storage.SetOperation("watermark", []byte("w1")), storage.SetOperation("seen/1", []byte("ids"))))
		require.NoError(t, c.Close(ctx))
		require.NoError(t, first.Shutdown(ctx))

		_, err = c.Get(ctx, "watermark")
		require.Error(t, err, "a client of a shut down extension fails, without panicking")

		second := startExtension(t, cfg, "")
		third := startExtension(t, cfg, "")
		for _, e := range []*sqlStorage{second, third} {
			assertValues(t, getClient(t, e, component.KindReceiver, receiverID, ""),
				map[string][]byte{"watermark": []byte("w1"), "seen/1": []byte("ids")})
		}
	})
}

func TestGetClientBeforeStartAndAfterShutdown(t *testing.T) {
	ctx := context.Background()
	cfg := createDefaultConfig().(*Config)
	cfg.Path = t.TempDir() + "/s.db"
	ext, err := NewFactory().Create(ctx, extensionSettings(), cfg)
	require.NoError(t, err)
	e := ext.(*sqlStorage)
	_, err = e.GetClient(ctx, component.KindReceiver, receiverID, "")
	require.ErrorIs(t, err, errNotStarted)
	_, _, err = e.TryAcquire(ctx, "r")
	require.ErrorIs(t, err, errNotStarted)
	require.NoError(t, e.Shutdown(ctx), "Shutdown works without Start")
	require.NoError(t, e.Start(ctx, nil))
	require.NoError(t, e.Shutdown(ctx))
	require.NoError(t, e.Shutdown(ctx), "Shutdown twice is fine")
	_, err = e.GetClient(ctx, component.KindReceiver, receiverID, "")
	require.ErrorIs(t, err, errNotStarted)
}

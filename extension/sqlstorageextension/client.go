package sqlstorageextension

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/otelcol-o365/otelcol-o365/internal/leasing"
)

var (
	_ storage.Client = (*client)(nil)
	_ storage.Walker = (*client)(nil)
)

// client is the storage client of one component and storage name. With a fence, every write runs in a
// transaction that first checks (and share-locks) the lease.
type client struct {
	e                       *sqlStorage
	kind, component, client string
	fence                   *leasing.Lease
	closed                  atomic.Bool
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (e *sqlStorage) newClient(kind component.Kind, id component.ID, name string, fence *leasing.Lease) *client {
	return &client{e: e, kind: strings.ToLower(kind.String()), component: id.String(), client: name, fence: fence}
}

// Get returns the value of key, or (nil, nil) if there is none. It is never fenced.
func (c *client) Get(ctx context.Context, key string) (value []byte, err error) {
	err = c.run(ctx, "get", key, false, func(ctx context.Context, q querier) error {
		value, err = c.get(ctx, q, key)
		return err
	})
	return value, err
}

// Set stores value under key, replacing any previous value.
func (c *client) Set(ctx context.Context, key string, value []byte) error {
	return c.run(ctx, "set", key, c.fence != nil, func(ctx context.Context, q querier) error {
		return c.set(ctx, q, key, value)
	})
}

// Delete removes key; a missing key is not an error.
func (c *client) Delete(ctx context.Context, key string) error {
	return c.run(ctx, "delete", key, c.fence != nil, func(ctx context.Context, q querier) error {
		return c.del(ctx, q, key)
	})
}

// Batch runs ops in order in one transaction: all of them are applied, or none. Get operations see the
// batch's earlier writes and fill op.Value in place.
func (c *client) Batch(ctx context.Context, ops ...*storage.Operation) error {
	if len(ops) == 0 {
		return nil
	}
	return c.run(ctx, "batch", "", true, func(ctx context.Context, q querier) error {
		return c.apply(ctx, q, ops)
	})
}

// Walk calls fn for each key of this client, in key order, inside one transaction; the operations fn
// returns are applied in that transaction after the walk (see storage.Walker). fn must not call the
// client.
func (c *client) Walk(ctx context.Context, fn storage.WalkFunc) error {
	return c.run(ctx, "walk", "", true, func(ctx context.Context, q querier) error {
		rows, err := q.QueryContext(ctx, c.e.q.walk, c.kind, c.component, c.client)
		if err != nil {
			return err
		}
		var ops []*storage.Operation
		stopped := false
		for !stopped && rows.Next() {
			var key string
			var value []byte
			if err := rows.Scan(&key, &value); err != nil {
				_ = rows.Close()
				return err
			}
			more, err := fn(key, value)
			ops = append(ops, more...)
			if errors.Is(err, storage.SkipAll) {
				stopped = true
			} else if err != nil {
				_ = rows.Close()
				return &walkFuncError{err}
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return c.apply(ctx, q, ops)
	})
}

// walkFuncError carries the WalkFunc's own error out unwrapped by the extension's message.
type walkFuncError struct{ err error }

func (w *walkFuncError) Error() string { return w.err.Error() }
func (w *walkFuncError) Unwrap() error { return w.err }

// Close releases the client; the database stays open for other clients until Shutdown.
func (c *client) Close(context.Context) error {
	c.closed.Store(true)
	return nil
}

func (c *client) apply(ctx context.Context, q querier, ops []*storage.Operation) error {
	for _, op := range ops {
		if op == nil {
			return errors.New("nil operation")
		}
		var err error
		switch op.Type {
		case storage.Get:
			op.Value, err = c.get(ctx, q, op.Key)
		case storage.Set:
			err = c.set(ctx, q, op.Key, op.Value)
		case storage.Delete:
			err = c.del(ctx, q, op.Key)
		default:
			err = fmt.Errorf("unknown operation type %d", op.Type)
		}
		if err != nil {
			return fmt.Errorf("key %q: %w", op.Key, err)
		}
	}
	return nil
}

func (c *client) get(ctx context.Context, q querier, key string) ([]byte, error) {
	var value []byte
	err := q.QueryRowContext(ctx, c.e.q.get, c.kind, c.component, c.client, key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err == nil && value == nil {
		value = []byte{} // a stored empty value is not a missing one
	}
	return value, err
}

func (c *client) set(ctx context.Context, q querier, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	_, err := q.ExecContext(ctx, c.e.q.set, c.kind, c.component, c.client, key, value)
	return err
}

func (c *client) del(ctx context.Context, q querier, key string) error {
	_, err := q.ExecContext(ctx, c.e.q.del, c.kind, c.component, c.client, key)
	return err
}

// run executes one operation, bounded by `timeout`: in a transaction when tx is set or the client is
// fenced and the operation writes, on the pool otherwise. Errors name the operation and key, never the
// password.
func (c *client) run(ctx context.Context, op, key string, tx bool, fn func(context.Context, querier) error) (err error) {
	start := time.Now()
	defer func() {
		c.e.observe(ctx, op, start, err)
		if err != nil {
			var wf *walkFuncError
			if errors.As(err, &wf) {
				err = wf.err
				return
			}
			if key != "" {
				op = fmt.Sprintf("%s %q", op, key)
			}
			err = c.e.opError(op, err)
		}
	}()
	if c.closed.Load() {
		return errClientClosed
	}
	db, err := c.e.database()
	if err != nil {
		return err
	}
	opCtx, cancel := c.e.withTimeout(ctx)
	defer cancel()
	if !tx {
		return fn(opCtx, db)
	}
	return c.e.inTx(opCtx, db, c.fence, func(t *sql.Tx) error { return fn(opCtx, t) })
}

// inTx runs fn in a transaction, after checking the fence if there is one.
func (e *sqlStorage) inTx(ctx context.Context, db *sql.DB, fence *leasing.Lease, fn func(*sql.Tx) error) error {
	t, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if fence != nil {
		var gen int64
		err = t.QueryRowContext(ctx, e.q.leaseCheck, fence.Resource, fence.Owner, fence.Generation).Scan(&gen)
		if errors.Is(err, sql.ErrNoRows) {
			err = fmt.Errorf("%w (resource %q, generation %d, owner %q)", leasing.ErrLeaseLost, fence.Resource, fence.Generation, fence.Owner)
			e.leaseEvent(ctx, "lost")
		}
	}
	if err == nil {
		err = fn(t)
	}
	if err != nil {
		_ = t.Rollback()
		return err
	}
	return t.Commit()
}

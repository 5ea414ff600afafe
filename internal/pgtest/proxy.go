package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// Proxy is a TCP proxy in front of the test Postgres that can go down (refuse connections and cut the
// open ones: a server restart) or hang (accept connections, forward nothing), without touching the
// shared server.
type Proxy struct {
	// Addr is where clients connect (host:port).
	Addr string

	t      testing.TB
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	hang  bool
	wg    sync.WaitGroup
}

// NewProxy forwards a new local port to target until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	p := &Proxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.Addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() {
		p.Down()
		p.wg.Wait()
	})
	return p
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			hang := p.hang
			p.mu.Unlock()
			if hang {
				continue // held open, never answered, closed by Down
			}
			p.wg.Go(func() { p.pipe(c) })
		}
	})
}

func (p *Proxy) pipe(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, u)
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = u.Close()
	<-done
}

// Down closes the listener and every connection: the database "crashed".
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// Up listens again on the same address, forwarding (or, with hang, accepting and never answering).
func (p *Proxy) Up(hang bool) {
	p.mu.Lock()
	p.hang = hang
	p.mu.Unlock()
	var ln net.Listener
	require.Eventually(p.t, func() bool {
		var err error
		ln, err = net.Listen("tcp", p.Addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	p.serve(ln)
}

// TablePrefix is a fresh table prefix starting with name, whose tables (every table it starts) are
// dropped from dsn when the test ends.
func TablePrefix(t testing.TB, dsn, name string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	prefix := name + "_" + hex.EncodeToString(b) + "_"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Logf("cleanup: cannot connect to drop %s* tables: %v", prefix, err)
			return
		}
		defer conn.Close(ctx)
		// Every table of the prefix, whichever component made it (sql_storage, o365_events).
		rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND starts_with(tablename, $1)`, prefix)
		if err != nil {
			t.Logf("cleanup: listing %s* tables: %v", prefix, err)
			return
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Logf("cleanup: listing %s* tables: %v", prefix, err)
			return
		}
		for _, table := range tables {
			if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{table}.Sanitize()); err != nil {
				t.Logf("cleanup: drop %s: %v", table, err)
			}
		}
	})
	return prefix
}

// Package pgtest finds the Postgres server tests use (127.0.0.1:5432 on the project's machines), or
// skips the test with a clear message where there is none.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DSNEnv overrides the Postgres the tests use.
const DSNEnv = "SQL_STORAGE_TEST_DSN"

var (
	pgOnce     sync.Once
	pgFound    string
	pgProblems []string
)

// DSN returns the DSN of a reachable Postgres, or skips the test saying where it looked.
// Candidates: $SQL_STORAGE_TEST_DSN, then 127.0.0.1:5432 with trust auth as postgres or root on the
// databases test, root and postgres (the project's machines).
func DSN(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() {
		candidates := []string{}
		if env := os.Getenv(DSNEnv); env != "" {
			candidates = append(candidates, env)
		}
		for _, user := range []string{"postgres", "root"} {
			for _, db := range []string{"test", "root", "postgres"} {
				candidates = append(candidates, fmt.Sprintf("postgres://%s@127.0.0.1:5432/%s?sslmode=disable&connect_timeout=3", user, db))
			}
		}
		for _, dsn := range candidates {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			conn, err := pgx.Connect(ctx, dsn)
			if err == nil {
				_, err = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS sql_storage_probe_permission (x int); DROP TABLE IF EXISTS sql_storage_probe_permission")
				_ = conn.Close(ctx)
			}
			cancel()
			if err == nil {
				pgFound = dsn
				return
			}
			pgProblems = append(pgProblems, err.Error())
		}
	})
	if pgFound == "" {
		t.Skipf("no Postgres reachable (set %s, or run one on 127.0.0.1:5432 with trust auth); the Postgres tests need one. Tried: %s",
			DSNEnv, strings.Join(pgProblems, "; "))
	}
	return pgFound
}

//go:build unix

package sqlstorageextension

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLivenessHelper is not a test: run as a child process by TestCrashedReplicaLeasesAreFreeAtOnce,
// it starts the extension on the database its environment names, takes a lease, says so, and waits to
// be killed.
func TestLivenessHelper(t *testing.T) {
	path := os.Getenv("SQL_STORAGE_LIVENESS_DB")
	if path == "" {
		t.Skip("helper process only")
	}
	cfg := createDefaultConfig().(*Config)
	cfg.Path = path
	e := startExtension(t, cfg, "crashing-replica")
	_, ok, err := e.TryAcquire(context.Background(), "o365/tenant/a")
	require.NoError(t, err)
	require.True(t, ok)
	os.Stdout.WriteString("HOLDING\n")
	time.Sleep(time.Hour)
}

// A collector killed without releasing its leases (kill -9, OOM) left them to expire after
// `lease.ttl` (30 s by default), so its restart on the same SQLite file polled nothing for that long.
// With SQLite, the replicas share a machine: a lease whose owner's process is gone is free at once,
// and one whose owner lives is not.
func TestCrashedReplicaLeasesAreFreeAtOnce(t *testing.T) {
	cfg := createDefaultConfig().(*Config) // lease.ttl 30 s
	cfg.Path = t.TempDir() + "/state.db"

	child := exec.Command(os.Args[0], "-test.run=^TestLivenessHelper$", "-test.count=1")
	child.Env = append(os.Environ(), "SQL_STORAGE_LIVENESS_DB="+cfg.Path)
	out, err := child.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, child.Start())
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	lines := bufio.NewScanner(out)
	for lines.Scan() && !strings.Contains(lines.Text(), "HOLDING") {
	}

	alive := startExtension(t, cfg, "peer")
	_, ok, err := alive.TryAcquire(context.Background(), "o365/tenant/a")
	require.NoError(t, err)
	require.False(t, ok, "the owner is alive: its lease holds")
	require.NoError(t, alive.Shutdown(context.Background()))

	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
	restarted := startExtension(t, cfg, "restarted")
	l, ok, err := restarted.TryAcquire(context.Background(), "o365/tenant/a")
	require.NoError(t, err)
	require.True(t, ok, "the owner is dead: its lease is free well before lease.ttl")
	require.Equal(t, int64(2), l.Generation, "a takeover: fencing tells the tenures apart")
}

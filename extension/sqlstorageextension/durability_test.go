package sqlstorageextension

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// killChildEnv names the SQLite file the re-executed test binary commits to until it is killed.
const killChildEnv = "SQL_STORAGE_KILL9_CHILD_PATH"

// A committed write survives kill -9 of the collector: a child process (this test binary, re-executed)
// commits receiver-like checkpoints (watermark + a chunk of ids, in one batch) in a loop and reports
// each commit on stdout; the parent SIGKILLs it mid-run — no Shutdown, no WAL checkpoint — then reopens
// the database: every reported commit is there, and every batch is whole.
func TestSQLiteCommitSurvivesKill9(t *testing.T) {
	for _, sync := range []string{"full", "normal"} {
		t.Run("synchronous="+sync, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "data", "storage.db")
			cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
			cmd.Env = append(os.Environ(), killChildEnv+"="+path, "SQL_STORAGE_KILL9_SYNC="+sync)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			cmd.Stderr = os.Stderr
			require.NoError(t, cmd.Start())

			// Kill after the 30th reported commit, while the child keeps committing.
			reported := 0
			scanner := bufio.NewScanner(stdout)
			for scanner.Scan() {
				line := scanner.Text()
				if n, ok := strings.CutPrefix(line, "committed "); ok {
					reported, err = strconv.Atoi(n)
					require.NoError(t, err)
					if reported == 30 {
						require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
						break
					}
				}
			}
			err = cmd.Wait()
			var exitErr *exec.ExitError
			require.ErrorAs(t, err, &exitErr, "child: %v", err)
			status := exitErr.Sys().(syscall.WaitStatus)
			require.True(t, status.Signaled() && status.Signal() == syscall.SIGKILL, "the child died of SIGKILL, not %v", status)
			require.Equal(t, 30, reported, "the child reported 30 commits before the kill")

			cfg := createDefaultConfig().(*Config)
			cfg.Path = path
			e := startExtension(t, cfg, "")
			c := getClient(t, e, component.KindReceiver, receiverID, "")
			w, err := c.Get(context.Background(), "watermark")
			require.NoError(t, err)
			require.NotNil(t, w, "the watermark survived")
			watermark, err := strconv.Atoi(string(w))
			require.NoError(t, err)
			assert.GreaterOrEqual(t, watermark, reported, "every commit reported before the kill survived")
			for i := 1; i <= watermark; i++ {
				v, err := c.Get(context.Background(), fmt.Sprintf("seen/%d", i))
				require.NoError(t, err)
				require.Equal(t, []byte(fmt.Sprintf("ids of batch %d", i)), v, "batch %d is whole", i)
			}
			v, err := c.Get(context.Background(), fmt.Sprintf("seen/%d", watermark+1))
			require.NoError(t, err)
			assert.Nil(t, v, "nothing of a batch that was not committed")
		})
	}
}

// TestKill9Child is the child of TestSQLiteCommitSurvivesKill9; it does nothing in a normal run.
func TestKill9Child(t *testing.T) {
	path := os.Getenv(killChildEnv)
	if path == "" {
		t.Skip("runs only as the child of TestSQLiteCommitSurvivesKill9")
	}
	ctx := context.Background()
	cfg := createDefaultConfig().(*Config)
	cfg.Path = path
	cfg.SQLite.Synchronous = os.Getenv("SQL_STORAGE_KILL9_SYNC")
	ext, err := NewFactory().Create(ctx, extensionSettings(), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(ctx, nil))
	c, err := ext.(*sqlStorage).GetClient(ctx, component.KindReceiver, receiverID, "")
	require.NoError(t, err)
	deadline := time.Now().Add(time.Minute) // the parent kills us long before
	for i := 1; time.Now().Before(deadline); i++ {
		require.NoError(t, c.Batch(ctx,
			storage.SetOperation(fmt.Sprintf("seen/%d", i), []byte(fmt.Sprintf("ids of batch %d", i))),
			storage.SetOperation("watermark", []byte(strconv.Itoa(i)))))
		fmt.Printf("committed %d\n", i)
	}
	t.Fatal("not killed")
}

package sqlstorageextension

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// A SQLite file that becomes read-only under a running collector: writes fail with an error naming the
// database, and work again once it is writable. Tests run as root, whom chmod does not stop, and SQLite
// keeps its files open: the database and its write-ahead log are made immutable (chattr +i), which
// refuses writes even through descriptors opened before. Skipped where chattr cannot do that.
func TestSQLiteNotWritable(t *testing.T) {
	cfg := testConfig(t, driverSQLite)
	probe := filepath.Join(t.TempDir(), "probe")
	require.NoError(t, os.WriteFile(probe, nil, 0o600))
	if out, err := exec.Command("chattr", "+i", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot make a file immutable here (chattr +i: %v %s)", err, out)
	}
	_ = exec.Command("chattr", "-i", probe).Run()
	files := []string{cfg.Path, cfg.Path + "-wal"}
	t.Cleanup(func() {
		for _, f := range files {
			_ = exec.Command("chattr", "-i", f).Run()
		}
	})
	ctx := context.Background()
	e := startExtension(t, cfg, "")
	c := getClient(t, e, component.KindReceiver, receiverID, "")
	require.NoError(t, c.Set(ctx, "watermark", []byte("w1")))

	for _, f := range files {
		out, err := exec.Command("chattr", "+i", f).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	err := c.Batch(ctx, storage.SetOperation("watermark", []byte("w2")), storage.SetOperation("seen/1", []byte("ids")))
	require.Error(t, err)
	t.Logf("while read-only: %v", err)
	assert.Contains(t, err.Error(), "sql_storage: batch: the sqlite database "+cfg.Path+" cannot be written")
	assertValues(t, c, map[string][]byte{"watermark": []byte("w1")})

	for _, f := range files {
		out, err := exec.Command("chattr", "-i", f).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	require.NoError(t, c.Batch(ctx, storage.SetOperation("watermark", []byte("w2")), storage.SetOperation("seen/1", []byte("ids"))))
	assertValues(t, c, map[string][]byte{"watermark": []byte("w2"), "seen/1": []byte("ids")})
}

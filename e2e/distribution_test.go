// Package e2e runs the otelcol-o365 distribution, built with ocb, against the Graph simulator.
package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// startCollector runs the distribution with the given YAML config and waits until its pipelines run;
// it is stopped at cleanup.
func startCollector(t *testing.T, config string) *proctest.Proc {
	t.Helper()
	cfgPath := proctest.WriteFile(t, filepath.Join(t.TempDir(), "config.yaml"), config)
	c := proctest.StartCollector(t, nil, "--config", cfgPath)
	c.WaitReady(t)
	return c
}

// readRecordIDs parses a file exporter's OTLP JSON lines and returns o365.record.id by dataset.
func readRecordIDs(t *testing.T, path string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return out
	}
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
	var um plog.JSONUnmarshaler
	for sc.Scan() {
		logs, err := um.UnmarshalLogs(sc.Bytes())
		if err != nil {
			continue // the exporter may be mid-line; the caller polls again
		}
		for i := 0; i < logs.ResourceLogs().Len(); i++ {
			rl := logs.ResourceLogs().At(i)
			ds, _ := rl.Resource().Attributes().Get("o365.dataset")
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					id, _ := lrs.At(k).Attributes().Get("o365.record.id")
					out[ds.Str()] = append(out[ds.Str()], id.Str())
				}
			}
		}
	}
	return out
}

func sorted(ids []string) []string {
	out := append([]string(nil), ids...)
	sort.Strings(out)
	return out
}

func total(m map[string][]string) int {
	n := 0
	for _, ids := range m {
		n += len(ids)
	}
	return n
}

// waitForExactly waits until the file holds as many records as want, then compares exactly.
func waitForExactly(t *testing.T, path string, want map[string][]string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) && total(readRecordIDs(t, path)) < total(want) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // a few more polls: nothing else may arrive
	got := readRecordIDs(t, path)
	for ds, ids := range want {
		require.Equal(t, sorted(ids), sorted(got[ds]), "dataset %s", ds)
	}
	require.Equal(t, total(want), total(got))
}

func simTenantYAML(n int) string {
	return fmt.Sprintf(`
      - name: tenant%d
        tenant_id: %s
        client_id: %s
        client_secret: ${env:E2E_SECRET}`, n, graphsimtest.TenantID(n), graphsimtest.ClientID)
}

// simTenantWithDatasets is simTenantYAML collecting only interactive sign-ins and directory audits.
func simTenantWithDatasets(n int) string {
	return simTenantYAML(n) + `
        datasets:
          signins: { kinds: [interactive] }
          directory_audits: {}`
}

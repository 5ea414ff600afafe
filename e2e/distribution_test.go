// Package e2e runs the otelcol-o365 distribution, built with ocb, against the Graph simulator.
package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
	for time.Now().Before(deadline) && total(proctest.RecordIDs(t, path)) < total(want) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // a few more polls: nothing else may arrive
	got := proctest.RecordIDs(t, path)
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

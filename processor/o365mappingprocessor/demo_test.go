package o365mappingprocessor

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.yaml.in/yaml/v3"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver"
)

// TestDemoRaisesEveryRule runs what `make run` runs, in process: the simulator with demo.yaml's licensed
// tenant, the o365 receiver configured as collector-config.yaml configures it for that tenant, and this
// processor with its default rules. Every default rule fires on its scenario, and only the break-glass
// account of the background adds an incident.
func TestDemoRaisesEveryRule(t *testing.T) {
	demo, err := graphsim.LoadConfig("../../internal/graphsim/cmd/graphsim/demo.yaml")
	require.NoError(t, err)
	demo.Addr, demo.RateLimits = "", graphsim.RateLimits{} // any port; the budget is not what is tested
	demo.Tenants = demo.Tenants[:1]
	demo.ManagedIdentities = nil
	sim := graphsimtest.Start(t, demo)

	raw, err := os.ReadFile("../../collector-config.yaml")
	require.NoError(t, err)
	var shipped map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &shipped))
	rcfg := o365receiver.NewFactory().CreateDefaultConfig().(*o365receiver.Config)
	o365 := shipped["receivers"].(map[string]any)["o365"].(map[string]any)
	require.NoError(t, confmap.NewFromStringMap(o365).Unmarshal(rcfg))
	require.Equal(t, "contoso", rcfg.Tenants[0].Name)
	for _, ds := range catalog.All() { // the licensed demo tenant collects every dataset (issue 13 §3)
		dc, listed := rcfg.Tenants[0].Datasets[ds.Name]
		require.True(t, listed && (dc.Enabled == nil && ds.DefaultEnabled || dc.Enabled != nil && *dc.Enabled),
			"collector-config.yaml: contoso does not collect %s", ds.Name)
	}
	rcfg.Tenants = rcfg.Tenants[:1]
	rcfg.Tenants[0].ClientSecret = "simulator-secret" // the config's ${env:…:-simulator-secret}
	rcfg.Storage = nil                                // in memory
	rcfg.GraphEndpoint, rcfg.AuthorityHost, rcfg.HTTP.TLS.CAFile = sim.URL(), sim.URL()+"/", sim.CAFile
	rcfg.ManagementEndpoint = sim.URL()
	rcfg.PollInterval = time.Hour // one backfill; its snapshots are not repeated
	rcfg.RateLimits = nil         // Graph's budget paces a real backfill; not what is tested
	require.NoError(t, rcfg.Validate())

	sink := &consumertest.LogsSink{}
	set := nopSettings()
	proc, err := NewFactory().CreateLogs(context.Background(), set, defaultConfig(), sink)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, proc.Shutdown(context.Background())) })
	rcv, err := o365receiver.NewFactory().CreateLogs(context.Background(), receivertest.NewNopSettings(o365receiver.NewFactory().Type()), rcfg, proc)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })

	want := map[string]int{"brute_force": 1, "password_spray": 1, "privileged_role_without_mfa": 2, // and the break-glass account
		"conditional_access_policy_disabled": 1, "impossible_travel": 1, "security_incident_severity_high": 1,
		"mailbox_forwarding_external": 1, "mass_file_download": 1, "anonymous_link_created": 1}
	rules, err := loadRules("")
	require.NoError(t, err)
	for _, r := range rules {
		require.Contains(t, want, r.Name, "every default rule is expected to fire")
	}
	byRule := func() map[string]int {
		got := map[string]int{}
		for _, inc := range incidentsOf(sink.AllLogs()...) {
			got[attrStr(inc, a.IncidentRule)]++
		}
		return got
	}
	require.Eventually(t, func() bool {
		got := byRule()
		for rule := range want {
			if got[rule] < want[rule] {
				return false
			}
		}
		return true
	}, 2*time.Minute, 50*time.Millisecond, "every default rule fires on the demo")
	assert.Equal(t, want, byRule())
}

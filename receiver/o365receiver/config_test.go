package o365receiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	if err := sub.Unmarshal(cfg); err != nil {
		return cfg, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestLoadConfig(t *testing.T) {
	defaults, err := loadConfig(t, "")
	require.NoError(t, err)
	want := createDefaultConfig().(*Config)
	want.Tenants = []TenantConfig{{
		TenantID: "11111111-2222-3333-4444-555555555555", ClientID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		ClientSecret: "from-the-defaults-test",
	}}
	assert.Equal(t, want, defaults)

	full, err := loadConfig(t, "full")
	require.NoError(t, err)
	storage := component.MustNewID("file_storage")
	want = createDefaultConfig().(*Config)
	want.Storage = &storage
	want.PollInterval = 2 * time.Minute
	want.Lookback = 15 * time.Minute
	want.InitialLookback = 72 * time.Hour
	want.GraphEndpoint = "https://graph.microsoft.us"
	want.AuthorityHost = "https://login.microsoftonline.us/"
	want.GraphResource = "https://graph.microsoft.us"
	want.PageSize = 500
	want.RateLimitMargin = 100 * time.Millisecond
	want.RateLimitMaxMargin = time.Second
	want.HTTP.Timeout = 30 * time.Second
	want.HTTP.TLS.CAFile = "/etc/ssl/graph-proxy.pem"
	want.RateLimits[catalog.FamilyReports] = RateLimit{TenantRequests: 4, AppRequests: 100, Window: 10 * time.Second} // other families keep their defaults
	disabled := false
	want.Tenants = []TenantConfig{{
		Name: "contoso", TenantID: "11111111-2222-3333-4444-555555555555", ClientID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		ClientSecret: "full-config-secret", Cloud: "usgov",
		Datasets: map[string]DatasetConfig{
			"signins":          {PollInterval: time.Minute},
			"directory_audits": {Enabled: &disabled},
		},
	}}
	assert.Equal(t, want, full)
	enabled := full.enabledDatasets(&full.Tenants[0])
	require.Len(t, enabled, 1)
	assert.Equal(t, "signins", enabled[0].dataset.Name)
	assert.Equal(t, time.Minute, enabled[0].pollInterval)
}

// Each dataset has its own lookback: its own setting, else the receiver's, else the catalog's default
// for its documented latency (risk detections appear up to 48 h late).
func TestLookbackPerDataset(t *testing.T) {
	lookbacks := func(name string, tenant int) map[string]time.Duration {
		cfg, err := loadConfig(t, name)
		require.NoError(t, err)
		out := map[string]time.Duration{}
		for _, ds := range cfg.enabledDatasets(&cfg.Tenants[tenant]) {
			out[ds.dataset.Name] = ds.lookback
		}
		return out
	}
	assert.Equal(t, map[string]time.Duration{
		"signins": 30 * time.Minute, "directory_audits": 2 * time.Hour, "risk_detections": 60 * time.Hour, "role_assignments": 0,
	}, lookbacks("lookbacks", 0))
	assert.Equal(t, map[string]time.Duration{
		"signins": 30 * time.Minute, "directory_audits": 30 * time.Minute, "risk_detections": 60 * time.Hour,
		"role_assignments": 0, "conditional_access_policies": 0, "mfa_coverage": 0,
	}, lookbacks("lookbacks", 1), "every dataset enabled by default, each with its default")
	assert.Equal(t, map[string]time.Duration{"signins": 45 * time.Minute, "risk_detections": 72 * time.Hour},
		lookbacks("lookbacks_receiver_wide", 0))
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		err  string
	}{
		{"missing_tenant_id", "`tenants[0].tenant_id` is required"},
		{"missing_client_id", "`tenants[0].client_id` is required"},
		{"no_tenants", "`tenants` must list at least one tenant"},
		{"bad_duration", "'poll_interval' time: invalid duration \"five"},
		{"unknown_dataset", "`tenants[0].datasets.mailbox_contents` is not a dataset; known datasets: audit_azure_ad, audit_exchange, audit_general, audit_sharepoint, conditional_access_policies, directory_audits, dlp, intune_audit_events, mfa_coverage, risk_detections, risky_users, role_assignments, security_alerts, security_incidents, signins"},
		{"unknown_key", "invalid keys: pol_interval"},
		{"bad_cloud", "`tenants[0].cloud` must be one of public, usgov, usgovdod, china; got \"mars\""},
		{"duplicate_name", "`tenants[1].name` \"a\" is already used by tenants[0]"},
		{"no_secret", "`tenants[0].client_secret` is empty and the environment variable O365_SECRET_99999999_0000_0000_0000_NOSECRETSET is not set"},
		{"bad_page_size", "`page_size` must be between 1 and 1000, got 5000"},
		{"zero_poll_workers", "`poll_workers` must be at least 1"},
		{"http_graph_endpoint", "`graph_endpoint` must be an https:// URL, got \"http://graph.example\""},
		{"zero_window", "`rate_limits.reports.window` must be positive"},
		{"snapshot_lookback", "`tenants[0].datasets.role_assignments.lookback` applies only to event streams; role_assignments is a snapshot"},
		{"negative_dataset_lookback", "`tenants[0].datasets.signins.lookback` must not be negative"},
		{"graph_resource_scope", "`graph_resource` names the resource, not the scope: drop the trailing /.default from \"https://graph.microsoft.us/.default\""},
		{"graph_resource_http", "`graph_resource` must be the https:// URL of a resource, such as https://graph.microsoft.us; got \"http://graph.microsoft.us\""},
		{"http_management_endpoint", "`management_endpoint` must be an https:// URL, got \"http://manage.example\""},
		{"management_resource_scope", "`management_resource` names the resource, not the scope: drop the trailing /.default from \"https://manage-gcc.office.com/.default\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, tt.name)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}

func TestSecretFromEnvironment(t *testing.T) {
	t.Setenv("O365_SECRET_99999999_0000_0000_0000_NOSECRETSET", "from-env")
	cfg, err := loadConfig(t, "no_secret")
	require.NoError(t, err)
	assert.Equal(t, "from-env", cfg.Tenants[0].secret())
}

func TestCloudEndpoints(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	for _, tt := range []struct{ cloud, graph, authority string }{
		{"", "https://graph.microsoft.com", "https://login.microsoftonline.com/"},
		{"public", "https://graph.microsoft.com", "https://login.microsoftonline.com/"},
		{"usgov", "https://graph.microsoft.us", "https://login.microsoftonline.us/"},
		{"usgovdod", "https://dod-graph.microsoft.us", "https://login.microsoftonline.us/"},
		{"china", "https://microsoftgraph.chinacloudapi.cn", "https://login.chinacloudapi.cn/"},
	} {
		g, a := cfg.endpoints(&TenantConfig{Cloud: tt.cloud})
		assert.Equal(t, tt.graph, g, tt.cloud)
		assert.Equal(t, tt.authority, a, tt.cloud)
	}
	cfg.GraphEndpoint, cfg.AuthorityHost = "https://127.0.0.1:8443/", "https://127.0.0.1:8443/"
	g, a := cfg.endpoints(&TenantConfig{Cloud: "china"})
	assert.Equal(t, "https://127.0.0.1:8443", g, "an explicit graph_endpoint wins over the cloud")
	assert.Equal(t, "https://127.0.0.1:8443/", a)
}

// The token scope follows the tenant's cloud, not `graph_endpoint` (a proxy, a private endpoint, the
// simulator); `graph_resource` overrides it.
func TestTokenScope(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.GraphEndpoint = "https://graph-proxy.example.com:8443"
	for cloud, scope := range map[string]string{
		"":         "https://graph.microsoft.com/.default",
		"public":   "https://graph.microsoft.com/.default",
		"usgov":    "https://graph.microsoft.us/.default",
		"usgovdod": "https://dod-graph.microsoft.us/.default",
		"china":    "https://microsoftgraph.chinacloudapi.cn/.default",
	} {
		assert.Equal(t, scope, cfg.tokenScope(&TenantConfig{Cloud: cloud}), cloud)
	}
	cfg.GraphResource = "https://graph.sovereign.example/"
	assert.Equal(t, "https://graph.sovereign.example/.default", cfg.tokenScope(&TenantConfig{Cloud: "usgov"}), "graph_resource wins")
}

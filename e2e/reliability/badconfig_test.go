package reliability

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// badConfigBase is a valid configuration using every component of the distribution with a key check:
// o365, o365_mapping, o365_export (all three destinations), o365_readiness with bearertokenauth, and
// sql_storage. %[1]s is a directory, %[2]d-%[4]d free ports, %[5]s a client certificate file.
const badConfigBase = `
extensions:
  sql_storage:
    path: %[1]s/state.db
  bearertokenauth/admin:
    token: admin-token
  o365_readiness:
    endpoint: 127.0.0.1:%[2]d
    admin_auth:
      authenticator: bearertokenauth/admin
receivers:
  o365:
    storage: sql_storage
    graph_endpoint: https://127.0.0.1:1
    authority_host: https://127.0.0.1:1/
    tenants:
      - name: secret-tenant
        tenant_id: 00000001-0000-4000-8000-000000000001
        client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
        client_secret: ${env:RELIABILITY_SECRET}
        datasets:
          signins: { kinds: [interactive] }
          directory_audits: {}
      - name: cert-tenant
        tenant_id: 00000002-0000-4000-8000-000000000002
        client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
        client_certificate_path: %[5]s
processors:
  o365_mapping: {}
exporters:
  o365_export:
    directory:
      path: %[1]s/export
    http:
      endpoint: http://127.0.0.1:%[3]d/export
    summary_server:
      endpoint: 127.0.0.1:%[4]d
service:
  extensions: [sql_storage, bearertokenauth/admin, o365_readiness]
  telemetry:
    metrics: { level: none }
  pipelines:
    logs:
      receivers: [o365]
      processors: [o365_mapping]
      exporters: [o365_export]
`

// del marks a key to remove.
type del struct{}

// badConfig is one invalid change to the base configuration and the error it must produce.
type badConfig struct {
	name  string
	set   map[string]any // dotted path (list indices as numbers) → value, or del{}
	want  string         // the error names the key: this text must be in the output
	start bool           // a check only Start can make (validate passes): only the real start must fail
}

// Scenario 7, bad configuration: every key check of the receiver and of the other components, and the
// checks only Start can make, against the built distribution. Each invalid configuration must make
// `otelcol-o365 validate --config` and a real start exit non-zero (the start before running anything:
// no half-configured collector) with one error naming the key; the base configuration itself validates
// and starts.
func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	cert := graphsimtest.NewClientCertificate(t, "bad-config")
	notACert := proctest.WriteFile(t, filepath.Join(dir, "not-a-certificate.pem"), "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
	env := []string{"RELIABILITY_SECRET=" + graphsimtest.Secret}
	base := fmt.Sprintf(badConfigBase, dir, proctest.FreePort(t), proctest.FreePort(t), proctest.FreePort(t), cert.Path)

	r := "receivers.o365."
	t0 := r + "tenants.0."
	cases := []badConfig{
		// o365 receiver: every key.
		{name: "poll_interval", set: map[string]any{r + "poll_interval": "0s"}, want: "`poll_interval` must be positive"},
		{name: "lookback", set: map[string]any{r + "lookback": "-1m"}, want: "`lookback` must not be negative"},
		{name: "initial_lookback", set: map[string]any{r + "initial_lookback": "0s"}, want: "`initial_lookback` must be positive"},
		{name: "page_size 0", set: map[string]any{r + "page_size": 0}, want: "`page_size` must be between 1 and 1000, got 0"},
		{name: "page_size 1001", set: map[string]any{r + "page_size": 1001}, want: "`page_size` must be between 1 and 1000, got 1001"},
		{name: "max_concurrent_requests", set: map[string]any{r + "max_concurrent_requests": 0}, want: "`max_concurrent_requests` must be at least 1"},
		{name: "max_cooldown", set: map[string]any{r + "max_cooldown": "0s"}, want: "`max_cooldown` must be positive"},
		{name: "forbidden_retry_interval", set: map[string]any{r + "forbidden_retry_interval": "0s"}, want: "`forbidden_retry_interval` must be positive"},
		{name: "rate_limit_margin", set: map[string]any{r + "rate_limit_margin": "-1s"}, want: "`rate_limit_margin` must not be negative"},
		{name: "rate_limit_max_margin", set: map[string]any{r + "rate_limit_max_margin": "-1s"}, want: "`rate_limit_max_margin` must not be negative"},
		{name: "http.endpoint", set: map[string]any{r + "http.endpoint": "https://graph.microsoft.com"}, want: "`http.endpoint` is not used; set `graph_endpoint` instead"},
		{name: "graph_endpoint", set: map[string]any{r + "graph_endpoint": "http://graph.example.com"}, want: "`graph_endpoint` must be an https:// URL"},
		{name: "authority_host", set: map[string]any{r + "authority_host": "http://login.example.com/"}, want: "`authority_host` must be an https:// URL"},
		{name: "rate_limits window", set: map[string]any{r + "rate_limits.reports.window": "0s"}, want: "`rate_limits.reports.window` must be positive"},
		{name: "rate_limits requests", set: map[string]any{r + "rate_limits.reports.tenant_requests": -1}, want: "`rate_limits.reports` request counts must not be negative"},
		{name: "retry_on_failure", set: map[string]any{r + "retry_on_failure.multiplier": -1}, want: "retry_on_failure"},
		{name: "unknown key", set: map[string]any{r + "poll_intervall": "1m"}, want: "poll_intervall"},
		{name: "tenants empty", set: map[string]any{r + "tenants": []any{}}, want: "`tenants` must list at least one tenant"},
		{name: "tenant_id", set: map[string]any{t0 + "tenant_id": del{}}, want: "`tenants[0].tenant_id` is required"},
		{name: "client_id", set: map[string]any{t0 + "client_id": del{}}, want: "`tenants[0].client_id` is required"},
		{name: "name", set: map[string]any{t0 + "name": "bad name!"}, want: "`tenants[0].name` \"bad name!\" may only contain"},
		{name: "name twice", set: map[string]any{r + "tenants.1.name": "secret-tenant"}, want: "`tenants[1].name` \"secret-tenant\" is already used by tenants[0]"},
		{name: "cloud", set: map[string]any{t0 + "cloud": "mars"}, want: "`tenants[0].cloud` must be one of public, usgov, usgovdod, china; got \"mars\""},
		{name: "two credentials", set: map[string]any{t0 + "client_certificate_path": cert.Path}, want: "`tenants[0]` sets client_secret and client_certificate_path"},
		{name: "no credential", set: map[string]any{t0 + "client_secret": del{}}, want: "`tenants[0].client_secret` is empty and the environment variable O365_SECRET_00000001_0000_4000_8000_000000000001 is not set"},
		{name: "client_secret from an unset variable", set: map[string]any{t0 + "client_secret": "${env:RELIABILITY_UNSET}"}, want: "`tenants[0].client_secret` is empty"},
		{name: "client_certificate_path missing", set: map[string]any{r + "tenants.1.client_certificate_path": filepath.Join(dir, "nope.pem")}, want: "`tenants[1].client_certificate_path`: stat"},
		{name: "client_certificate_path not a certificate", set: map[string]any{r + "tenants.1.client_certificate_path": notACert}, want: "`tenants[1].client_certificate_path`"},
		{name: "dataset unknown", set: map[string]any{t0 + "datasets.sign_ins": map[string]any{}}, want: "`tenants[0].datasets.sign_ins` is not a dataset"},
		{name: "dataset poll_interval", set: map[string]any{t0 + "datasets.signins.poll_interval": "-1s"}, want: "`tenants[0].datasets.signins.poll_interval` must not be negative"},
		{name: "kinds on another dataset", set: map[string]any{t0 + "datasets.directory_audits.kinds": []any{"interactive"}}, want: "`tenants[0].datasets.directory_audits.kinds` applies only to signins"},
		{name: "kind unknown", set: map[string]any{t0 + "datasets.signins.kinds": []any{"interactiv"}}, want: "`tenants[0].datasets.signins.kinds` has unknown kind \"interactiv\""},
		{name: "storage unknown", set: map[string]any{r + "storage": "file_storage"}, want: "`storage`: extension \"file_storage\" is not configured", start: true},

		// sql_storage.
		{name: "sql_storage driver", set: map[string]any{"extensions.sql_storage.driver": "mysql"}, want: "`driver` must be sqlite or postgres, got \"mysql\""},
		{name: "sql_storage path", set: map[string]any{"extensions.sql_storage.path": ""}, want: "`path` is required with `driver: sqlite`"},
		{name: "sql_storage path query", set: map[string]any{"extensions.sql_storage.path": dir + "/state.db?mode=ro"}, want: "`path` must not contain '?' or '#'"},
		{name: "sql_storage dsn with sqlite", set: map[string]any{"extensions.sql_storage.dsn": "postgres://u@h/db"}, want: "`dsn` is only used with `driver: postgres`"},
		{name: "sql_storage dsn missing", set: map[string]any{"extensions.sql_storage.driver": "postgres", "extensions.sql_storage.path": ""}, want: "`dsn` is required with `driver: postgres`"},
		{name: "sql_storage dsn invalid", set: map[string]any{"extensions.sql_storage.driver": "postgres", "extensions.sql_storage.path": "", "extensions.sql_storage.dsn": "postgres://u:Pa55@host:notaport/db"}, want: "`dsn` is not a valid Postgres connection string"},
		{name: "sql_storage table_prefix", set: map[string]any{"extensions.sql_storage.table_prefix": "Bad-Prefix"}, want: "`table_prefix` must be 1 to 40 lower-case letters"},
		{name: "sql_storage timeout", set: map[string]any{"extensions.sql_storage.timeout": "0s"}, want: "`timeout` must be positive"},
		{name: "sql_storage start_timeout", set: map[string]any{"extensions.sql_storage.start_timeout": "0s"}, want: "`start_timeout` must be positive"},
		{name: "sql_storage sqlite.synchronous", set: map[string]any{"extensions.sql_storage.sqlite.synchronous": "off"}, want: "`sqlite.synchronous` must be one of normal, full, extra"},
		{name: "sql_storage sqlite.busy_timeout", set: map[string]any{"extensions.sql_storage.sqlite.busy_timeout": "-1s"}, want: "`sqlite.busy_timeout` must not be negative"},
		{name: "sql_storage pool.max_open_conns", set: map[string]any{"extensions.sql_storage.pool.max_open_conns": -1}, want: "`pool.max_open_conns` must not be negative"},
		{name: "sql_storage pool.max_idle_conns", set: map[string]any{"extensions.sql_storage.pool.max_idle_conns": -1}, want: "`pool.max_idle_conns` must not be negative"},
		{name: "sql_storage pool.conn_max_lifetime", set: map[string]any{"extensions.sql_storage.pool.conn_max_lifetime": "-1s"}, want: "`pool.conn_max_lifetime` must not be negative"},
		{name: "sql_storage pool.conn_max_idle_time", set: map[string]any{"extensions.sql_storage.pool.conn_max_idle_time": "-1s"}, want: "`pool.conn_max_idle_time` must not be negative"},
		{name: "sql_storage lease.ttl", set: map[string]any{"extensions.sql_storage.lease.ttl": "0s"}, want: "`lease.ttl` must be positive"},
		{name: "sql_storage lease.renew_interval", set: map[string]any{"extensions.sql_storage.lease.renew_interval": "0s"}, want: "`lease.renew_interval` must be positive"},
		{name: "sql_storage lease.renew_interval >= ttl", set: map[string]any{"extensions.sql_storage.lease.renew_interval": "40s"}, want: "`lease.renew_interval` (40s) must be shorter than `lease.ttl` (30s)"},
		{name: "sql_storage replica_id", set: map[string]any{"extensions.sql_storage.replica_id": strings.Repeat("r", 201)}, want: "`replica_id` must be at most 200 printable characters"},
		{name: "sql_storage path not creatable", set: map[string]any{"extensions.sql_storage.path": notACert + "/state.db"}, want: "sql_storage: cannot open the sqlite database " + notACert + "/state.db", start: true},

		// o365_export.
		{name: "o365_export period", set: map[string]any{"exporters.o365_export.period": "7m"}, want: "`period` must divide 24h evenly in whole minutes"},
		{name: "o365_export flush_delay", set: map[string]any{"exporters.o365_export.flush_delay": "-1s"}, want: "`flush_delay` must not be negative"},
		{name: "o365_export state_idle_timeout", set: map[string]any{"exporters.o365_export.state_idle_timeout": "0s"}, want: "`state_idle_timeout` must be positive"},
		{name: "o365_export max_records_per_tenant", set: map[string]any{"exporters.o365_export.max_records_per_tenant": 0}, want: "`max_records_per_tenant` must be at least 1"},
		{name: "o365_export no destination", set: map[string]any{"exporters.o365_export.directory": del{}, "exporters.o365_export.http": del{}, "exporters.o365_export.summary_server": del{}},
			want: "at least one of `directory`, `http` or `summary_server` must be configured"},
		{name: "o365_export directory.path", set: map[string]any{"exporters.o365_export.directory.path": ""}, want: "`directory.path` must be set"},
		{name: "o365_export directory.path root", set: map[string]any{"exporters.o365_export.directory.path": "/"}, want: "`directory.path` must not be the root directory"},
		{name: "o365_export directory.max_age", set: map[string]any{"exporters.o365_export.directory.max_age": "-1h"}, want: "`directory.max_age` must not be negative"},
		{name: "o365_export directory.max_documents_per_tenant", set: map[string]any{"exporters.o365_export.directory.max_documents_per_tenant": -1}, want: "`directory.max_documents_per_tenant` must not be negative"},
		{name: "o365_export http.endpoint", set: map[string]any{"exporters.o365_export.http.endpoint": "ftp://example.com/x"}, want: "`http.endpoint` must be an http:// or https:// URL"},
		{name: "o365_export summary_server.endpoint", set: map[string]any{"exporters.o365_export.summary_server.endpoint": ""}, want: "`summary_server.endpoint` must be set"},
		{name: "o365_export journal.path without directory", set: map[string]any{"exporters.o365_export.directory": del{}},
			want: "`journal.path` must be set when there is no `directory`"},
		{name: "o365_export journal.path root", set: map[string]any{"exporters.o365_export.journal": map[string]any{"path": "/"}}, want: "`journal.path` must not be the root directory"},
		{name: "o365_export summary_server.max_documents_per_tenant", set: map[string]any{"exporters.o365_export.summary_server.max_documents_per_tenant": 0}, want: "`summary_server.max_documents_per_tenant` must be at least 1"},

		// o365_mapping.
		{name: "o365_mapping pseudonymize.key", set: map[string]any{"processors.o365_mapping.pseudonymize.key": "short"}, want: "`pseudonymize.key` must be at least 16 bytes long, got 5"},
		{name: "o365_mapping correlation.max_entries_per_tenant", set: map[string]any{"processors.o365_mapping.correlation.max_entries_per_tenant": 0}, want: "`correlation.max_entries_per_tenant` must be at least 1"},
		{name: "o365_mapping mapping_file", set: map[string]any{"processors.o365_mapping.mapping_file": filepath.Join(dir, "nope.yml")}, want: "`mapping_file`"},
		{name: "o365_mapping correlation_file", set: map[string]any{"processors.o365_mapping.correlation_file": filepath.Join(dir, "nope.yml")}, want: "`correlation_file`"},

		// o365_readiness.
		{name: "o365_readiness endpoint", set: map[string]any{"extensions.o365_readiness.endpoint": ""}, want: "`endpoint` must be set"},
		{name: "o365_readiness admin_auth.authenticator", set: map[string]any{"extensions.o365_readiness.admin_auth": map[string]any{}}, want: "`admin_auth.authenticator` must name an authenticator extension"},
		{name: "o365_readiness readiness_requires_auth", set: map[string]any{"extensions.o365_readiness.admin_auth": del{}, "extensions.o365_readiness.readiness_requires_auth": true},
			want: "`readiness_requires_auth` is true but `admin_auth` is not configured"},
		{name: "o365_readiness readiness.datasets empty", set: map[string]any{"extensions.o365_readiness.readiness.datasets": []any{""}}, want: "`readiness.datasets[0]` must not be empty"},
		{name: "o365_readiness readiness.datasets twice", set: map[string]any{"extensions.o365_readiness.readiness.datasets": []any{"signins", "signins"}}, want: "`readiness.datasets[1]` \"signins\" is listed twice"},
		{name: "o365_readiness readiness.max_watermark_lag", set: map[string]any{"extensions.o365_readiness.readiness.max_watermark_lag": "-1m"}, want: "`readiness.max_watermark_lag` must not be negative"},
		{name: "o365_readiness probe.interval", set: map[string]any{"extensions.o365_readiness.probe.interval": "0s"}, want: "`probe.interval` must be positive"},
		{name: "o365_readiness probe.timeout", set: map[string]any{"extensions.o365_readiness.probe.timeout": "0s"}, want: "`probe.timeout` must be positive"},
		{name: "o365_readiness run_rate_limit.requests", set: map[string]any{"extensions.o365_readiness.run_rate_limit.requests": 0}, want: "`run_rate_limit.requests` must be at least 1"},
		{name: "o365_readiness run_rate_limit.per", set: map[string]any{"extensions.o365_readiness.run_rate_limit.per": "0s"}, want: "`run_rate_limit.per` must be positive"},
		{name: "o365_readiness authenticator unknown", set: map[string]any{"extensions.o365_readiness.admin_auth.authenticator": "bearertokenauth/nope"}, want: "bearertokenauth/nope", start: true},
	}

	// The base configuration is valid and starts.
	baseFile := proctest.WriteFile(t, filepath.Join(dir, "base.yaml"), base)
	v := proctest.StartCollector(t, env, "validate", "--config", baseFile)
	require.Equal(t, 0, v.Wait(t, time.Minute), "the base configuration validates:\n%s", v.Out.String())
	p := proctest.StartCollector(t, env, "--config", baseFile)
	p.WaitReady(t) // the base configuration starts
	p.Stop(t)
	require.Equal(t, 0, p.ExitCode())

	accepted := 0
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := proctest.WriteFile(t, filepath.Join(dir, "bad-"+strconv.Itoa(i)+".yaml"), mutateYAML(t, base, c.set))
			if !c.start {
				v := proctest.StartCollector(t, env, "validate", "--config", file)
				code := v.Wait(t, time.Minute)
				out := v.Out.String()
				if !assert.NotZero(t, code, "validate accepted it") {
					accepted++
				}
				assert.Contains(t, out, c.want, "validate names the key")
				assert.Equal(t, 1, strings.Count(out, "Error:"), "one error:\n%s", out)
			}
			s := proctest.StartCollector(t, env, "--config", file)
			code := s.Wait(t, time.Minute)
			out := s.Out.String()
			if !assert.NotZero(t, code, "the collector started") {
				accepted++
			}
			assert.Contains(t, out, c.want, "the start error names the key")
			assert.NotContains(t, out, "Everything is ready", "nothing ran half-configured")
			assert.NotContains(t, out, graphsimtest.Secret)
		})
	}
	report(t, row{Scenario: "7 bad config (validate + start)", Runs: len(cases), Violations: accepted,
		Note: fmt.Sprintf("%d invalid configurations, each refused with one error naming the key", len(cases))})
}

// mutateYAML applies set to a YAML document: dotted paths, list indices as numbers; del{} removes.
func mutateYAML(t *testing.T, doc string, set map[string]any) string {
	t.Helper()
	var root map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(doc), &root))
	for path, value := range set {
		parts := strings.Split(path, ".")
		var cur any = root
		for i, part := range parts {
			last := i == len(parts)-1
			switch node := cur.(type) {
			case map[string]any:
				if last {
					if _, remove := value.(del); remove {
						delete(node, part)
					} else {
						node[part] = value
					}
					continue
				}
				next, ok := node[part]
				if !ok || next == nil {
					next = map[string]any{}
					node[part] = next
				}
				cur = next
			case []any:
				n, err := strconv.Atoi(part)
				require.NoError(t, err, "%s: %q is not a list index", path, part)
				require.False(t, last, "%s: cannot set a list element", path)
				cur = node[n]
			default:
				t.Fatalf("%s: %q is not a map or list", path, part)
			}
		}
	}
	out, err := yaml.Marshal(root)
	require.NoError(t, err)
	return string(out)
}

package reliability

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// Scenario 9, secrets. One full run of the built distribution with every component: the o365 receiver
// with a client-secret tenant, a certificate tenant (graphsimtest.NewClientCertificate) and a tenant
// whose secret is wrong (AADSTS errors get logged), tokens that expire every second and Graph faults
// (so refreshes, retries and failures are logged too); o365_mapping with a pseudonymization key;
// o365_export with a directory and its summary server; o365_readiness with bearertokenauth on the admin
// routes; health_check; sql_storage; the file exporter; the collector's own Prometheus metrics; logs at
// debug level. Everything the run produced is searched: every log line, the metrics page, the emitted
// records, the export documents and the exporter's journal, and the HTTP responses of every readiness
// route (the admin ones with the admin token), health_check and the export summary. Searched for: the client secrets, the admin
// token, the pseudonymization key, the certificate's private key material (its PEM body, each PEM line,
// the base64 — standard and URL — of the PKCS#8 and PKCS#1 DER and of the whole PEM, the private
// exponent and primes in hex and decimal), and every access token the simulator issued (whole, and its
// signature), plus any JWT at all ("eyJ", the base64url of `{"`). 0 hits.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		wrongSecret = "wrong-Secret~9876543210zyxwvutsrqponmlkjihgf"
		adminToken  = "admin-Token~a1b2c3d4e5f6g7h8i9j0klmnopqrst"
		pseudoKey   = "pseudonymization-Key~0123456789abcdef"
	)
	cert := graphsimtest.NewClientCertificate(t, "reliability-secrets")
	certTenant := graphsimtest.Tenant(2, map[string]graphsim.DatasetSpec{"signins": {Count: 300, Span: time.Hour}, "directory_audits": {Count: 100, Span: time.Hour}})
	certTenant.Apps = []graphsim.App{{ClientID: graphsimtest.ClientID, Certificate: cert.CertPEM, Roles: graphsimtest.AllRoles}}
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 100, TokenTTL: authTokenTTL,
		Faults: []graphsim.Fault{{Kind: "status", Status: 503, Probability: 0.05}, {Kind: "truncate", Probability: 0.05}},
		Tenants: []graphsim.Tenant{
			graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 1500, Span: time.Hour}, "directory_audits": {Count: 300, Span: time.Hour},
				"role_assignments": {Count: 20}, "mfa_coverage": {Count: 50}}),
			certTenant,
			graphsimtest.Tenant(3, map[string]graphsim.DatasetSpec{"signins": {Count: 10, Span: time.Hour}}),
		}})
	dir := t.TempDir()
	readinessPort, summaryPort, metricsPort, healthPort := proctest.FreePort(t), proctest.FreePort(t), proctest.FreePort(t), proctest.FreePort(t)
	records := filepath.Join(dir, "records.json")
	cfg := proctest.WriteFile(t, filepath.Join(dir, "config.yaml"), fmt.Sprintf(`
extensions:
  sql_storage:
    path: %[1]s/state.db
  health_check:
    endpoint: 127.0.0.1:%[11]d
  bearertokenauth/admin:
    token: ${env:RELIABILITY_ADMIN_TOKEN}
  o365_readiness:
    endpoint: 127.0.0.1:%[7]d
    admin_auth:
      authenticator: bearertokenauth/admin
receivers:
  o365:
    storage: sql_storage
    poll_interval: 1s
    initial_lookback: 2h
    graph_endpoint: %[2]s
    authority_host: %[2]s/
    retry_on_failure: { initial_interval: 50ms, max_interval: 500ms }
    http:
      tls:
        ca_file: %[3]s
    tenants:
      - name: tenant1
        tenant_id: %[4]s
        client_id: %[6]s
        client_secret: ${env:RELIABILITY_SECRET}
        datasets:
          signins: { kinds: [interactive] }
          directory_audits: {}
          role_assignments: {}
          mfa_coverage: {}
      - name: tenant2
        tenant_id: %[5]s
        client_id: %[6]s
        client_certificate_path: %[12]s
        datasets:
          signins: { kinds: [interactive] }
          directory_audits: {}
      - name: tenant3
        tenant_id: %[13]s
        client_id: %[6]s
        client_secret: ${env:RELIABILITY_WRONG_SECRET}
        datasets:
          signins: { kinds: [interactive] }
processors:
  o365_mapping:
    pseudonymize:
      key: ${env:RELIABILITY_PSEUDO_KEY}
exporters:
  file:
    path: %[9]s
  o365_export:
    flush_delay: 0s
    period: 15m
    directory:
      path: %[1]s/export
    summary_server:
      endpoint: 127.0.0.1:%[8]d
service:
  extensions: [sql_storage, health_check, bearertokenauth/admin, o365_readiness]
  telemetry:
    logs:
      level: debug
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %[10]d
  pipelines:
    logs/raw:
      receivers: [o365]
      exporters: [file]
    logs/normalized:
      receivers: [o365]
      processors: [o365_mapping]
      exporters: [o365_export]
`, dir, sim.URL(), sim.CAFile, graphsimtest.TenantID(1), graphsimtest.TenantID(2), graphsimtest.ClientID, readinessPort, summaryPort,
		records, metricsPort, healthPort, cert.Path, graphsimtest.TenantID(3)))
	p := proctest.StartCollector(t, []string{"RELIABILITY_SECRET=" + graphsimtest.Secret, "RELIABILITY_WRONG_SECRET=" + wrongSecret,
		"RELIABILITY_ADMIN_TOKEN=" + adminToken, "RELIABILITY_PSEUDO_KEY=" + pseudoKey}, "--config", cfg)

	from, to := sim.Anchor().Add(-2*time.Hour), sim.Anchor()
	want := len(sim.IDs(graphsimtest.TenantID(1), "signins", from, to)) + len(sim.IDs(graphsimtest.TenantID(1), "directory_audits", from, to)) +
		len(sim.IDs(graphsimtest.TenantID(2), "signins", from, to)) + len(sim.IDs(graphsimtest.TenantID(2), "directory_audits", from, to))
	require.Eventually(t, func() bool { return countKey(records, `"o365.record.id"`) >= want }, 2*time.Minute, 100*time.Millisecond,
		"the two working tenants' event records are collected")
	time.Sleep(4 * time.Second) // tokens expire and are refreshed; more polls, faults and failures logged

	var outputs []string
	get := func(url string, header ...string) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(t, err)
		if len(header) == 2 {
			req.Header.Set(header[0], header[1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err, url)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		outputs = append(outputs, fmt.Sprintf("%s %d %v\n%s", url, resp.StatusCode, resp.Header, body))
	}
	readiness := fmt.Sprintf("http://127.0.0.1:%d", readinessPort)
	for _, route := range []string{"/readiness", "/tenants/tenant1/readiness", "/tenants/tenant2/readiness", "/tenants/tenant3/readiness", "/", "/version", "/tenants"} {
		get(readiness + route)
		get(readiness+route, "Authorization", "Bearer "+adminToken)
	}
	req, err := http.NewRequest(http.MethodPost, readiness+"/run/tenant1", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	outputs = append(outputs, fmt.Sprintf("POST /run/tenant1 %d %v\n%s", resp.StatusCode, resp.Header, body))
	summary := fmt.Sprintf("http://127.0.0.1:%d", summaryPort)
	for _, tenant := range []string{"tenant1", "tenant2", "tenant3"} {
		get(summary + "/export/summary?tenant_id=" + tenant)
	}
	get(summary + "/export/schema/v1")
	get(fmt.Sprintf("http://127.0.0.1:%d/", healthPort))
	get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	p.Stop(t) // o365_export writes the open periods
	require.Equal(t, 0, p.ExitCode())

	logs := p.Out.String()
	emitted, err := os.ReadFile(records)
	require.NoError(t, err)
	var exports strings.Builder
	docs, _ := filepath.Glob(filepath.Join(dir, "export", "*", "*.json"))
	require.NotEmpty(t, docs, "export documents were written")
	journals, _ := filepath.Glob(filepath.Join(dir, "export", ".journal", "*", "*.jnl"))
	require.NotEmpty(t, journals, "the export journal holds the periods still in memory")
	for _, d := range append(docs, journals...) {
		b, err := os.ReadFile(d)
		require.NoError(t, err)
		exports.Write(b)
	}
	// What the run must have produced for the search to mean something.
	require.Contains(t, logs, "\tdebug\t", "debug logs")
	require.Contains(t, logs, "AADSTS7000215", "the wrong secret's failure is logged")
	require.Contains(t, strings.Join(outputs, "\n"), "otelcol_receiver_accepted_log_records", "the metrics page")
	tokens := sim.IssuedTokens()
	require.Greater(t, len(tokens), 4, "tokens were issued and refreshed")

	secrets := secretForms(t, cert, map[string]string{
		"client secret": graphsimtest.Secret, "wrong client secret": wrongSecret, "admin token": adminToken, "pseudonymization key": pseudoKey,
	}, tokens)
	sources := map[string]string{
		"logs": logs, "emitted records": string(emitted), "export documents and journal": exports.String(), "HTTP responses": strings.Join(outputs, "\n"),
	}
	hits := 0
	for source, text := range sources {
		for what, s := range secrets {
			if n := strings.Count(text, s); n > 0 {
				hits += n
				i := strings.Index(text, s)
				t.Errorf("%s contain the %s %d times, e.g. …%s…", source, what, n, text[max(0, i-80):min(len(text), i+len(s)+20)])
			}
		}
	}
	assert.Zero(t, hits)
	t.Logf("searched %d KiB of logs, %d KiB of records, %d export documents, %d journal files, %d HTTP responses for %d secret forms (%d access tokens)",
		len(logs)>>10, len(emitted)>>10, len(docs), len(journals), len(outputs)+1, len(secrets), len(tokens))
	report(t, row{Scenario: "9 secrets (full run, every component)", Runs: 1, Violations: hits,
		Note: fmt.Sprintf("%d KiB logs, %d KiB records, %d export docs, %d journal files, %d HTTP responses; %d secret forms incl. %d tokens: 0 hits",
			len(logs)>>10, len(emitted)>>10, len(docs), len(journals), len(outputs)+1, len(secrets), len(tokens))})
}

// secretForms lists every string that must not appear: the named secrets, the private key of cert in
// every encoding a leak could take, each access token and its signature, and any JWT ("eyJ").
func secretForms(t *testing.T, cert graphsimtest.ClientCertificate, named map[string]string, tokens []string) map[string]string {
	t.Helper()
	out := map[string]string{"JWT (eyJ)": "eyJ"}
	for k, v := range named {
		out[k] = v
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(cert.Key)
	require.NoError(t, err)
	pkcs1 := x509.MarshalPKCS1PrivateKey(cert.Key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	raw, err := os.ReadFile(cert.Path)
	require.NoError(t, err)
	require.Contains(t, string(raw), string(keyPEM), "the certificate file holds this key")
	body := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(string(keyPEM), "-----BEGIN PRIVATE KEY-----"), "-----END PRIVATE KEY-----\n"))
	out["private key PEM body"] = strings.ReplaceAll(body, "\n", "")
	for i, line := range strings.Split(body, "\n") {
		if len(line) >= 40 {
			out[fmt.Sprintf("private key PEM line %d", i)] = line
		}
	}
	for name, der := range map[string][]byte{"PKCS#8": pkcs8, "PKCS#1": pkcs1, "certificate file": raw} {
		out["private key base64 "+name] = base64.StdEncoding.EncodeToString(der)[8:72]
		out["private key base64url "+name] = base64.RawURLEncoding.EncodeToString(der)[8:72]
	}
	for name, n := range map[string]interface{ Text(int) string }{"D": cert.Key.D, "P": cert.Key.Primes[0], "Q": cert.Key.Primes[1]} {
		out["private exponent/prime "+name+" hex"] = n.Text(16)[:48]
		out["private exponent/prime "+name+" decimal"] = n.Text(10)[:48]
	}
	out["private key hex"] = hex.EncodeToString(pkcs8)[32:96]
	for i, tok := range tokens {
		out[fmt.Sprintf("access token %d", i)] = tok
		if parts := strings.Split(tok, "."); len(parts) == 3 {
			out[fmt.Sprintf("access token %d signature", i)] = parts[2]
		}
	}
	return out
}

// countKey counts occurrences of key in a file (0 if it does not exist yet).
func countKey(path, key string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), key)
}

package reliability

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver"
)

// authTokenTTL makes the simulator's tokens live 5 min 1 s: MSAL (inside azidentity) refreshes a cached
// token once less than 5 minutes are left, so every token is replaced after about a second — tokens
// expire all through the backfill.
const authTokenTTL = 5*time.Minute + time.Second

// pacedConfig reads sign-ins at `rate` requests per second: long enough for faults to land mid-backfill.
func pacedConfig(sim *graphsimtest.Sim, rate int) *o365receiver.Config {
	cfg := receiverConfig(sim, 1)
	cfg.PageSize = 100
	cfg.Lookback = time.Second
	cfg.RateLimits = map[string]o365receiver.RateLimit{"reports": {TenantRequests: rate, AppRequests: 1000, Window: time.Second}}
	cfg.RateLimitMargin = 0
	return cfg
}

// servedRecords is the number of records the simulator served on 200 pages.
func servedRecords(sim *graphsimtest.Sim) int {
	n := 0
	for _, r := range sim.Requests() {
		if r.Status == http.StatusOK {
			n += r.Records
		}
	}
	return n
}

// Scenario 4a, token expiry mid-backfill: tokens are replaced about every second (authTokenTTL), and
// every 1.5 s the simulator also revokes the tenant's tokens, so Graph answers 401 "Access token has
// expired" to requests carrying the token of a moment ago. The client drops its credential, takes a new
// token and retries the request in place. Checked: the 401 is logged with status, code and request ids;
// many tokens were issued; exactly once; the simulator served hardly more than the ground truth.
func TestAuthTokenExpiry(t *testing.T) {
	records := pick(3000, 30000)
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 94, TokenTTL: authTokenTTL, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: records, Span: 6 * time.Hour}}),
	}})
	want := truth("signins", sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-7*time.Hour), sim.Anchor()))
	sink := newConsumerSink()
	run := startReceiver(t, pacedConfig(sim, 6), sink, newHost(nil))
	var revocations atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(1500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				sim.RevokeTokens(graphsimtest.TenantID(1))
				revocations.Add(1)
			}
		}
	}()
	sink.ledger.waitUnique(t, len(want), pick(2*time.Minute, 10*time.Minute))
	cancel()
	<-done
	time.Sleep(500 * time.Millisecond)
	run.stop(t)
	res := sink.ledger.exactlyOnce(t, want)

	st := sim.Stats()
	expired := 0
	for _, e := range run.lines("Graph request failed: Access token has expired") {
		require.True(t, fieldString(e, "status") == "401" && fieldString(e, "code") == "InvalidAuthenticationToken" &&
			hasFields(e, "tenant", "dataset", "request_id", "client_request_id"), "%s", entryText(e))
		expired++
	}
	require.Positive(t, expired, "Graph's 401 for an expired token is logged")
	assert.Greater(t, st.TokensIssued, revocations.Load()/2, "tokens were replaced all through the backfill")
	served := servedRecords(sim)
	failedPolls := len(run.lines("Poll failed"))
	assert.LessOrEqual(t, served, len(want)+(failedPolls+1)*9*100, "the position is kept")
	report(t, row{Scenario: "4 auth: token expiry mid-backfill", Runs: 1, Lost: res.lost, Duplicated: res.duplicated,
		Note: fmt.Sprintf("%d records; %d revocations, %d tokens issued, %d requests answered 401 (expired), %d failed polls, %d records re-read",
			len(want), revocations.Load(), st.TokensIssued, expired, failedPolls, served-len(want))})
}

// Scenario 4b, token endpoint down: mid-backfill the simulator's token endpoint answers 503
// (temporarily_unavailable) for a few seconds (1 minute in soak), while tokens keep expiring
// (authTokenTTL). Checked: the failure is logged (no access token, with the token endpoint's answer)
// and polls fail as `auth`; nothing is delivered once the last valid token is gone; the backfill
// resumes by itself afterwards, exactly once, from its position.
func TestAuthTokenEndpointOutage(t *testing.T) {
	records := pick(3000, 30000)
	outage := pick(6*time.Second, time.Minute)
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 95, TokenTTL: authTokenTTL, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: records, Span: 6 * time.Hour}}),
	}})
	want := truth("signins", sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-7*time.Hour), sim.Anchor()))
	sink := newConsumerSink()
	run := startReceiver(t, pacedConfig(sim, 5), sink, newHost(nil))
	sink.ledger.waitUnique(t, len(want)/3, time.Minute)

	sim.SetTokenOutage(true)
	began := time.Now()
	// The last token obtained before the outage is given out for 1 s more (MSAL's 5 min margin), and a
	// request that got one may wait its turn in the request budget (at most 8 pages at 5 per second):
	// after 4 s no request can carry a valid token any more.
	time.Sleep(4 * time.Second)
	quiet := sink.ledger.deliveries()
	time.Sleep(outage - time.Since(began))
	during := sink.ledger.deliveries() - quiet
	sim.SetTokenOutage(false)
	t.Logf("token endpoint down for %s; %d of %d records delivered before", outage, quiet, len(want))

	sink.ledger.waitUnique(t, len(want), pick(2*time.Minute, 10*time.Minute))
	time.Sleep(500 * time.Millisecond)
	run.stop(t)
	res := sink.ledger.exactlyOnce(t, want)
	violations := 0
	if !assert.Zero(t, during, "records delivered while no token could be obtained") {
		violations++
	}
	noToken := run.lines("Graph request failed: cannot obtain an access token")
	require.NotEmpty(t, noToken, "the outage is logged")
	for _, e := range noToken {
		require.True(t, fieldString(e, "kind") == "auth" && hasFields(e, "tenant", "dataset", "client_request_id") &&
			strings.Contains(fieldString(e, "cause"), "HTTP 503 temporarily_unavailable"), "%s", entryText(e))
	}
	polls := run.lines("Poll failed")
	require.NotEmpty(t, polls)
	for _, e := range polls {
		require.Equal(t, "auth", fieldString(e, "kind"), "%s", entryText(e))
	}
	served := servedRecords(sim)
	assert.LessOrEqual(t, served, len(want)+(len(polls)+1)*9*100, "the position is kept")
	report(t, row{Scenario: fmt.Sprintf("4 auth: token endpoint down %s", outage), Runs: 1, Lost: res.lost, Duplicated: res.duplicated, Violations: violations,
		Note: fmt.Sprintf("%d records; %d token requests refused (logged %d), %d failed polls, %d records re-read",
			len(want), sim.Stats().TokenRequests-sim.Stats().TokensIssued, len(noToken), len(polls), served-len(want))})
}

// Scenario 4c, secret rotated, with the built distribution, sql_storage and the OTLP sink. Mid-backfill
// the app's secret is rotated in the simulator (and the tenant's tokens revoked, so the change bites at
// once): the collector reports AADSTS7000215 and keeps running. The new secret then arrives through the
// configuration, twice:
//   - rotation 1: the secret comes from the env provider (`${env:RELIABILITY_SECRET}`); the collector is
//     stopped (SIGTERM) and started again with the new value in its environment and the same storage;
//   - rotation 2: the secret comes from the file provider (`${file:<dir>/secret}`); the new value is
//     written to the file and the running collector reloads its configuration on SIGHUP.
//
// Checked: the failure log line names the AADSTS code; after each reload the receiver resumes from its
// stored position; every id is delivered exactly once across the three configurations.
func TestAuthSecretRotation(t *testing.T) {
	records := pick(20_000, 100_000)
	tenant := graphsimtest.TenantID(1)
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 96, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: records, Span: 12 * time.Hour}}),
	}})
	want := truth("signins", sim.IDs(tenant, "signins", sim.Anchor().Add(-13*time.Hour), sim.Anchor()))
	sink := startOTLPSink(t)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	config := func(epoch int, secretRef string) string {
		return proctest.WriteFile(t, filepath.Join(dir, fmt.Sprintf("config-%d.yaml", epoch)), fmt.Sprintf(`
extensions:
  sql_storage:
    path: %[1]s/state.db
    lease: { ttl: 3s, renew_interval: 1s }
receivers:
  o365:
    storage: sql_storage
    poll_interval: 500ms
    max_cooldown: 2s
    initial_lookback: 13h
    page_size: 200
    graph_endpoint: %[2]s
    authority_host: %[2]s/
    rate_limits:
      reports: { tenant_requests: %[8]d, app_requests: 1000, window: 1s }
    retry_on_failure: { initial_interval: 50ms, max_interval: 1s }
    http:
      tls:
        ca_file: %[3]s
    tenants:
      - name: tenant1
        tenant_id: %[4]s
        client_id: %[5]s
        client_secret: %[6]s
        datasets:
          signins: { kinds: [interactive] }
%[7]s`, dir, sim.URL(), sim.CAFile, tenant, graphsimtest.ClientID, secretRef, sinkPipelineYAML(sink.addr, epoch, ""), pick(10, 20)))
	}
	rotate := func(secret string) {
		sim.RotateSecret(tenant, graphsimtest.ClientID, secret)
		sim.RevokeTokens(tenant) // a rotation does not end tokens already issued; revoking makes it bite now
	}
	waitLog := func(p *proctest.Proc, msg, contains string, after int) {
		t.Helper()
		require.Eventually(t, func() bool {
			for _, l := range logLines(p.Out.String(), msg) {
				if strings.Contains(fmt.Sprint(l), contains) && len(logLines(p.Out.String(), msg)) > after {
					return true
				}
			}
			return false
		}, time.Minute, 50*time.Millisecond, "collector logs %q with %q", msg, contains)
	}
	secrets := []string{graphsimtest.Secret, "rotated-1~" + strings.Repeat("x", 30), "rotated-2~" + strings.Repeat("y", 30)}

	// Run 0: the secret from the environment.
	p := proctest.StartCollector(t, []string{"RELIABILITY_SECRET=" + secrets[0]}, "--config", config(0, "${env:RELIABILITY_SECRET}"))
	sink.ledger.waitUnique(t, len(want)/4, 2*time.Minute)
	rotate(secrets[1])
	waitLog(p, "Poll failed", "AADSTS7000215", 0)
	stalled := sink.ledger.unique()
	p.Stop(t)
	require.Equal(t, 0, p.ExitCode())
	failure := logLines(p.Out.String(), "Poll failed")
	require.NotEmpty(t, failure)
	assert.Contains(t, fmt.Sprint(failure[len(failure)-1]["error"]), "Invalid client secret provided")
	assert.Equal(t, "auth", failure[len(failure)-1]["kind"])

	// Run 1: restarted with the new secret in its environment; then the secret moves to a file.
	p = proctest.StartCollector(t, []string{"RELIABILITY_SECRET=" + secrets[1]}, "--config", config(1, "${env:RELIABILITY_SECRET}"))
	sink.ledger.waitUnique(t, stalled+1, time.Minute)
	require.NotEmpty(t, logLines(p.Out.String(), "Resuming the stream from its stored position"), "run 1 resumes")
	p.Stop(t)

	// Run 2: the secret from a file; rotated, the file rewritten, and SIGHUP reloads the configuration.
	require.NoError(t, os.WriteFile(secretFile, []byte(secrets[1]), 0o600))
	p = proctest.StartCollector(t, nil, "--config", config(2, "${file:"+secretFile+"}"))
	sink.ledger.waitUnique(t, len(want)*2/3, 2*time.Minute)
	rotate(secrets[2])
	waitLog(p, "Poll failed", "AADSTS7000215", 0)
	resumedBefore := len(logLines(p.Out.String(), "Resuming the stream from its stored position"))
	require.NoError(t, os.WriteFile(secretFile, []byte(secrets[2]), 0o600))
	require.NoError(t, p.Signal(syscall.SIGHUP))
	sink.ledger.waitUnique(t, len(want), pick(3*time.Minute, 10*time.Minute))
	assert.NotEmpty(t, logLines(p.Out.String(), "Config updated, restart service"), "SIGHUP reloaded the configuration")
	assert.Greater(t, len(logLines(p.Out.String(), "Resuming the stream from its stored position")), resumedBefore, "the reloaded receiver resumes")
	time.Sleep(time.Second)
	p.Stop(t)
	require.Equal(t, 0, p.ExitCode())

	res := sink.ledger.exactlyOnce(t, want)
	report(t, row{Scenario: "4 auth: secret rotated (env + restart, file + SIGHUP)", Runs: 3, Lost: res.lost, Duplicated: res.duplicated,
		Note: fmt.Sprintf("%d records; AADSTS7000215 reported twice; resumed after each new secret", len(want))})
}

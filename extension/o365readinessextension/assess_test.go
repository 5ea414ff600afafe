package o365readinessextension

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

// Edge cases of the assessment that the simulator scenarios (readiness_test.go) do not reach, on fixed
// inputs: assess does no I/O, so these need no receiver.
func TestAssessEdgeCases(t *testing.T) {
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	tenant := o365status.Tenant{
		Name: "contoso", TenantID: "tid", ClientID: "cid", Cloud: "public", Credential: "client_secret", CredentialPresent: true,
		Datasets: []o365status.Dataset{{Name: "signins", Permissions: []string{"AuditLog.Read.All"}, Licence: "Entra ID P1 or P2"}},
	}
	token := o365status.TokenInfo{ObtainedAt: now.Add(-time.Minute), ExpiresOn: now.Add(time.Hour), Roles: []string{"AuditLog.Read.All"}}
	okStream := func(variant string) o365status.StreamStatus {
		return o365status.StreamStatus{
			Tenant: "contoso", Dataset: "signins", Variant: variant, State: o365status.StateOK,
			LastPollStart: now.Add(-10 * time.Second), LastPollEnd: now.Add(-5 * time.Second), LastSuccess: now.Add(-5 * time.Second),
			RecordsLastPoll: 7, NextPoll: now.Add(5 * time.Minute), Watermark: now.Add(-90 * time.Second), BackfillProgress: 1,
		}
	}
	failed := func(s o365status.StreamStatus, kind, state string, failures int, everSucceeded bool) o365status.StreamStatus {
		s.LastError, s.LastErrorKind, s.State, s.ConsecutiveFailures, s.RecordsLastPoll = "graph "+kind+" error: boom", kind, state, failures, 0
		if !everSucceeded {
			s.LastSuccess = time.Time{}
		}
		return s
	}

	tests := []struct {
		name    string
		tenant  func(o365status.Tenant) o365status.Tenant
		token   func(o365status.TokenInfo) o365status.TokenInfo
		streams []o365status.StreamStatus
		probes  map[string]*probeResult
		cfg     ReadinessConfig
		check   func(t *testing.T, tr TenantReadiness, d DatasetReadiness)
	}{
		{
			name:    "credential missing",
			tenant:  func(t o365status.Tenant) o365status.Tenant { t.CredentialPresent = false; return t },
			token:   func(o365status.TokenInfo) o365status.TokenInfo { return o365status.TokenInfo{} },
			streams: []o365status.StreamStatus{{Tenant: "contoso", Dataset: "signins", State: o365status.StateStarting}},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.False(t, tr.Ready)
				assert.Equal(t, CredentialStatus{Kind: "client_secret", Configured: false}, tr.Credential)
				assert.Contains(t, tr.Reasons[0], "credential: no client secret is configured (`client_secret` is empty")
				assert.Contains(t, tr.Reasons[1], "access token: none obtained yet")
				assert.Contains(t, tr.Reasons[2], "signins: contoso/signins: the first poll has not run yet")
				assert.Equal(t, "none", d.LastPollResult)
				assert.Nil(t, d.Endpoint.Reachable)
				assert.Equal(t, "none", d.Endpoint.Source)
			},
		},
		{
			name:  "first poll running",
			token: func(o365status.TokenInfo) o365status.TokenInfo { return o365status.TokenInfo{} },
			streams: []o365status.StreamStatus{{
				Tenant: "contoso", Dataset: "signins", Variant: "interactive", State: o365status.StateStarting, LastPollStart: now.Add(-time.Second),
			}},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.False(t, d.Ready)
				assert.True(t, d.Streams[0].Polling)
				assert.Equal(t, "running", d.LastPollResult)
				assert.Equal(t, "signins: contoso/signins/interactive: the first poll has not finished yet (running since 2026-05-04T11:59:59Z)", tr.Reasons[1])
				assert.False(t, d.Permissions.Known)
			},
		},
		{
			name: "lateness near the lookback is a warning",
			streams: []o365status.StreamStatus{func() o365status.StreamStatus {
				s := okStream("")
				s.Lookback, s.MaxLateness, s.MaxLatenessAt = 30*time.Minute, 25*time.Minute, now.Add(-time.Hour)
				return s
			}(), func() o365status.StreamStatus {
				s := okStream("non_interactive")
				s.Lookback, s.MaxLateness = 30*time.Minute, 23*time.Minute // below 80 %: nothing to say
				return s
			}()},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.True(t, tr.Ready, "a warning, not a reason")
				require.Len(t, d.Warnings, 1)
				assert.Equal(t, "contoso/signins: a record arrived 25m0s late (at 2026-05-04T11:00:00Z), within 20% of `lookback` (30m0s): a record a little later would be missed; raise the dataset's `lookback`", d.Warnings[0])
				assert.Equal(t, 1800.0, d.Streams[0].LookbackSeconds)
				assert.Equal(t, 1500.0, d.Streams[0].MaxLatenessSeconds)
			},
		},
		{
			name:    "transient failure after a success is a warning",
			streams: []o365status.StreamStatus{failed(okStream(""), "transient", o365status.StateFailing, 1, true)},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.True(t, tr.Ready)
				assert.True(t, d.Ready)
				require.Len(t, d.Warnings, 1)
				assert.Contains(t, d.Warnings[0], "transient Graph failure")
				assert.Contains(t, d.Warnings[0], "(the stream cools down after 3 failed polls in a row)")
				assert.Equal(t, []string{"signins: " + d.Warnings[0]}, tr.Warnings)
			},
		},
		{
			name:    "transient failure before any success stops readiness",
			streams: []o365status.StreamStatus{failed(okStream(""), "transient", o365status.StateFailing, 1, false)},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.False(t, tr.Ready)
				assert.Contains(t, d.Reasons[0], "contoso/signins: last poll failed at 2026-05-04T11:59:55Z — transient Graph failure")
			},
		},
		{
			name:    "storage failure stops readiness at once",
			streams: []o365status.StreamStatus{failed(okStream(""), "storage", o365status.StateFailing, 1, true)},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.False(t, d.Ready)
				assert.Contains(t, d.Reasons[0], "checkpoint storage failed")
			},
		},
		{
			name:    "watermark lag beyond the configured limit",
			streams: []o365status.StreamStatus{okStream("")},
			cfg:     ReadinessConfig{MaxWatermarkLag: time.Minute},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				require.NotNil(t, d.WatermarkLagSeconds)
				assert.InDelta(t, 90, *d.WatermarkLagSeconds, 0.001)
				assert.False(t, d.Ready)
				assert.Equal(t, "lagging: the newest collected record is 1m30s old (`readiness.max_watermark_lag` is 1m0s)", d.Reasons[0])
			},
		},
		{
			name:    "lag is only reported without a limit",
			streams: []o365status.StreamStatus{okStream("")},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.True(t, d.Ready)
				assert.InDelta(t, 90, *d.WatermarkLagSeconds, 0.001)
			},
		},
		{
			name: "a configured dataset without streams does not count",
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.True(t, tr.Ready)
				assert.Equal(t, "not_running", d.State)
				assert.False(t, d.CountsForReadiness)
				assert.Contains(t, d.Warnings[0], "not collected")
			},
		},
		{
			name: "token error overwritten by a cancellation: the streams' AADSTS answer is used",
			token: func(o365status.TokenInfo) o365status.TokenInfo {
				return o365status.TokenInfo{LastError: "ClientSecretCredential: server response error:", LastErrorAt: now}
			},
			streams: []o365status.StreamStatus{failed(okStream(""), "auth", o365status.StateFailing, 1, false)},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.Equal(t, "ClientSecretCredential: server response error:", tr.Token.LastError, "no stream quotes AADSTS: kept")
			},
		},
		{
			name: "token error overwritten by a cancellation, with a stream quoting the endpoint",
			token: func(o365status.TokenInfo) o365status.TokenInfo {
				return o365status.TokenInfo{LastError: "ClientSecretCredential: server response error:", LastErrorAt: now}
			},
			streams: []o365status.StreamStatus{
				func() o365status.StreamStatus { // another tenant's failure is not this tenant's
					s := failed(okStream(""), "auth", o365status.StateFailing, 1, false)
					s.Tenant = "fabrikam"
					s.LastError = "graph auth error: cannot obtain an access token: token endpoint answered HTTP 400 unauthorized_client: AADSTS700016: Application not found. (client-request-id 99)"
					return s
				}(),
				func() o365status.StreamStatus {
					s := failed(okStream(""), "auth", o365status.StateFailing, 1, false)
					s.LastError = "graph auth error: cannot obtain an access token: token endpoint answered HTTP 401 invalid_client: AADSTS7000222: The provided client secret keys are expired. (client-request-id 1234)"
					return s
				}(),
			},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.Equal(t, "token endpoint answered HTTP 401 invalid_client: AADSTS7000222: The provided client secret keys are expired.", tr.Token.LastError)
				assert.Contains(t, tr.Reasons[0], "the client secret has expired")
				assert.True(t, tr.Token.Failing)
				assert.False(t, tr.Token.Obtained)
			},
		},
		{
			name:    "the endpoint answers again while the stream cools down",
			streams: []o365status.StreamStatus{failed(okStream(""), "licence", o365status.StateCoolingDown, 1, false)},
			probes:  map[string]*probeResult{"signins": {at: now, ok: true}},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.False(t, d.Ready, "ready once a poll succeeds, not on a probe's word")
				assert.True(t, *d.Endpoint.Reachable)
				assert.Equal(t, "probe", d.Endpoint.Source)
				assert.Contains(t, d.Warnings[0], "the endpoint answers now (probe at 2026-05-04T12:00:00Z); the stream recovers with its next poll at 2026-05-04T12:05:00Z, or POST /run/contoso?dataset=signins polls at once")
			},
		},
		{
			name:    "a probe's permission failure explains a first poll still running",
			token:   func(o365status.TokenInfo) o365status.TokenInfo { return token },
			streams: []o365status.StreamStatus{{Tenant: "contoso", Dataset: "signins", State: o365status.StateStarting, LastPollStart: now}},
			probes:  map[string]*probeResult{"signins": {at: now, kind: "permission", status: 403, code: "Authorization_RequestDenied", message: "graph permission error: HTTP 403 Authorization_RequestDenied: Insufficient privileges"}},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.Contains(t, d.Reasons[0], "probe at 2026-05-04T12:00:00Z failed — permission: Graph refused the request (403); the app needs AuditLog.Read.All with admin consent")
				assert.Contains(t, d.Reasons[1], "the first poll has not finished yet")
			},
		},
		{
			name:  "standby: another replica holds the tenant's lease",
			token: func(o365status.TokenInfo) o365status.TokenInfo { return o365status.TokenInfo{} },
			streams: []o365status.StreamStatus{
				{Tenant: "contoso", Dataset: "signins", Variant: "interactive", State: o365status.StateStandby, BackfillProgress: 1},
			},
			probes: map[string]*probeResult{"signins": {at: now, kind: "licence"}},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.True(t, tr.Standby)
				assert.True(t, tr.Ready, "a replica on standby is ready: %v", tr.Reasons)
				assert.Empty(t, tr.Warnings)
				assert.Equal(t, o365status.StateStandby, d.State)
				assert.Equal(t, "none", d.Endpoint.Source, "not probed, and a stale probe is not shown")
				assert.Equal(t, "none", d.LastPollResult)
				assert.False(t, needsProbe([]o365status.StreamStatus{{State: o365status.StateStandby}}), "no probe for a stream another replica polls")
			},
		},
		{
			name: "several sources of one dataset are summarised",
			streams: []o365status.StreamStatus{
				okStream("interactive"),
				func() o365status.StreamStatus {
					s := failed(okStream("non_interactive"), "throttled", o365status.StateFailing, 1, true)
					s.Watermark = now.Add(-time.Hour)
					s.NextPoll = now.Add(time.Minute)
					return s
				}(),
			},
			check: func(t *testing.T, tr TenantReadiness, d DatasetReadiness) {
				assert.True(t, d.Ready)
				assert.Equal(t, o365status.StateFailing, d.State, "the worst state")
				assert.Equal(t, "failed", d.LastPollResult)
				assert.Equal(t, 7, d.RecordsLastPoll)
				assert.InDelta(t, 3600, *d.WatermarkLagSeconds, 0.001, "the largest lag")
				assert.Equal(t, now.Add(time.Minute), *d.NextPoll, "the earliest next poll")
				assert.Equal(t, "none", d.Endpoint.Source, "a source failed and nothing was probed")
				require.Len(t, d.Streams, 2)
				assert.Contains(t, d.Warnings[0], "contoso/signins/non_interactive: last poll failed")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := assessInput{receiver: "o365", tenant: tenant, token: token, streams: tt.streams, probes: tt.probes, cfg: &tt.cfg, now: now}
			if tt.tenant != nil {
				in.tenant = tt.tenant(tenant)
			}
			if tt.token != nil {
				in.token = tt.token(token)
			}
			tr := assess(in)
			require.Len(t, tr.Datasets, 1)
			d := tr.Datasets[0]
			assert.Equal(t, len(tr.Reasons) == 0, tr.Ready, "ready exactly when there is no reason")
			tt.check(t, tr, d)
		})
	}
}

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiterSet(2, time.Minute, func() time.Time { return now })
	ok, _ := l.allow("a")
	assert.True(t, ok)
	ok, _ = l.allow("a")
	assert.True(t, ok)
	ok, wait := l.allow("a")
	assert.False(t, ok, "the burst is spent")
	assert.Equal(t, 30*time.Second, wait, "one token every 30 s")
	ok, _ = l.allow("b")
	assert.True(t, ok, "buckets are per key")

	now = now.Add(29 * time.Second)
	ok, wait = l.allow("a")
	assert.False(t, ok)
	assert.Equal(t, time.Second, wait.Round(time.Millisecond))
	now = now.Add(time.Second)
	ok, _ = l.allow("a")
	assert.True(t, ok)

	now = now.Add(24 * time.Hour)
	for range 2 {
		ok, _ = l.allow("a")
		assert.True(t, ok)
	}
	ok, _ = l.allow("a")
	assert.False(t, ok, "refill is capped at the burst")
}

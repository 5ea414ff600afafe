package o365readinessextension

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

// The JSON documents of the API. Field names are a stable contract, documented in README.md: fields may
// be added, never renamed or removed. Times are RFC 3339 in UTC; a time that is not known is absent.

// TenantReadiness is the answer of GET /tenants/{name}/readiness.
type TenantReadiness struct {
	Tenant   string `json:"tenant"`
	Receiver string `json:"receiver"`
	TenantID string `json:"tenant_id"`
	ClientID string `json:"client_id"`
	Cloud    string `json:"cloud"`
	Ready    bool   `json:"ready"`
	// Standby: another collector replica holds the tenant's lease and polls it (every stream is in
	// state standby here); the tenant does not stop this replica's readiness.
	Standby    bool               `json:"standby"`
	Reasons    []string           `json:"reasons"`
	Warnings   []string           `json:"warnings"`
	CheckedAt  time.Time          `json:"checked_at"`
	Credential CredentialStatus   `json:"credential"`
	Token      TokenStatus        `json:"token"`
	Datasets   []DatasetReadiness `json:"datasets"`
}

// CredentialStatus says which credential is configured; never the credential itself.
type CredentialStatus struct {
	Kind       string `json:"kind"`
	Configured bool   `json:"configured"`
}

// TokenStatus describes the tenant's access token; never the token itself.
type TokenStatus struct {
	Obtained   bool       `json:"obtained"`
	ObtainedAt *time.Time `json:"obtained_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	// Failing: the last attempt to obtain a token failed (after the current one, if any, was obtained).
	Failing     bool       `json:"failing"`
	Roles       []string   `json:"roles"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

// DatasetReadiness is one dataset of a tenant.
type DatasetReadiness struct {
	Name               string           `json:"name"`
	CountsForReadiness bool             `json:"counts_for_readiness"`
	Ready              bool             `json:"ready"`
	Reasons            []string         `json:"reasons"`
	Warnings           []string         `json:"warnings"`
	State              string           `json:"state"`
	Licence            string           `json:"licence"`
	Latency            string           `json:"latency"`
	Permissions        PermissionStatus `json:"permissions"`
	Endpoint           EndpointStatus   `json:"endpoint"`
	// Summary over the dataset's streams (one per sign-in kind, or just one).
	LastPollEnd         *time.Time        `json:"last_poll_end,omitempty"`
	LastPollResult      string            `json:"last_poll_result"`
	LastSuccess         *time.Time        `json:"last_success,omitempty"`
	RecordsLastPoll     int               `json:"records_last_poll"`
	WatermarkLagSeconds *float64          `json:"watermark_lag_seconds,omitempty"`
	NextPoll            *time.Time        `json:"next_poll,omitempty"`
	Streams             []StreamReadiness `json:"streams"`
}

// PermissionStatus compares the application permissions a dataset needs with the token's roles claim.
type PermissionStatus struct {
	Required []string `json:"required"`
	Granted  []string `json:"granted"`
	Missing  []string `json:"missing"`
	// Known is false until a token has been obtained (the roles are read from it).
	Known bool `json:"known"`
}

// EndpointStatus tells whether the dataset's Graph endpoint answers with the granted permissions and
// the tenant's licences.
type EndpointStatus struct {
	// Reachable is null when nothing is known yet.
	Reachable *bool      `json:"reachable"`
	Source    string     `json:"source"`
	CheckedAt *time.Time `json:"checked_at,omitempty"`
	Error     string     `json:"error,omitempty"`
	ErrorKind string     `json:"error_kind,omitempty"`
	// Status and Code are the HTTP status and Graph error code of a failed probe.
	Status int    `json:"status,omitempty"`
	Code   string `json:"code,omitempty"`
}

// StreamReadiness is one tenant × dataset × source, as the receiver reports it.
type StreamReadiness struct {
	Name                string     `json:"name"`
	Variant             string     `json:"variant,omitempty"`
	State               string     `json:"state"`
	Polling             bool       `json:"polling"`
	LastPollStart       *time.Time `json:"last_poll_start,omitempty"`
	LastPollEnd         *time.Time `json:"last_poll_end,omitempty"`
	LastPollResult      string     `json:"last_poll_result"`
	LastSuccess         *time.Time `json:"last_success,omitempty"`
	LastError           string     `json:"last_error,omitempty"`
	LastErrorKind       string     `json:"last_error_kind,omitempty"`
	RecordsLastPoll     int        `json:"records_last_poll"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	NextPoll            *time.Time `json:"next_poll,omitempty"`
	Watermark           *time.Time `json:"watermark,omitempty"`
	WatermarkLagSeconds *float64   `json:"watermark_lag_seconds,omitempty"`
	BackfillProgress    float64    `json:"backfill_progress"`
	// LookbackSeconds and MaxLatenessSeconds (event streams): how late a record may arrive and still be
	// collected, and the latest arrival seen since the receiver started.
	LookbackSeconds    float64 `json:"lookback_seconds,omitempty"`
	MaxLatenessSeconds float64 `json:"max_lateness_seconds,omitempty"`
}

// Values of state (besides the receiver's starting, ok, failing, cooling_down) and of results.
const (
	stateNotRunning = "not_running"

	resultOK      = "ok"
	resultFailed  = "failed"
	resultRunning = "running"
	resultNone    = "none"

	sourceLastPoll = "last_poll"
	sourceProbe    = "probe"
	sourceNone     = "none"
)

// hardKinds are failures that retrying cannot fix: a failing stream with one of them is not ready even
// before it cools down. Transient and throttled failures are warnings until the stream cools down.
var hardKinds = map[string]bool{
	o365status.ErrorAuth: true, o365status.ErrorPermission: true, o365status.ErrorLicence: true,
	o365status.ErrorBadRequest: true, o365status.ErrorStorage: true, o365status.ErrorForeignHost: true,
	o365status.ErrorAuditingDisabled: true,
}

// assessInput is everything the assessment of one tenant reads; assess itself does no I/O.
type assessInput struct {
	receiver string
	tenant   o365status.Tenant
	token    o365status.TokenInfo
	// streams of the receiver (assess keeps the tenant's own)
	streams []o365status.StreamStatus
	// probes by dataset name (nil or absent: not probed)
	probes map[string]*probeResult
	cfg    *ReadinessConfig
	now    time.Time
}

// needsProbe reports whether the dataset's streams leave its endpoint's reachability open: some stream
// has not succeeded yet, or its last poll failed. Healthy datasets are never probed.
func needsProbe(streams []o365status.StreamStatus) bool {
	for _, s := range streams {
		if s.State == o365status.StateStandby {
			continue // another replica polls it: not this replica's budget to spend
		}
		if s.LastSuccess.IsZero() || s.LastError != "" {
			return true
		}
	}
	return false
}

// streamsOf returns the tenant's streams of one dataset, in the receiver's order.
func streamsOf(all []o365status.StreamStatus, tenant, dataset string) []o365status.StreamStatus {
	var out []o365status.StreamStatus
	for _, s := range all {
		if s.Tenant == tenant && s.Dataset == dataset {
			out = append(out, s)
		}
	}
	return out
}

// assess computes a tenant's readiness.
func assess(in assessInput) TenantReadiness {
	t := in.tenant
	var own []o365status.StreamStatus
	for _, s := range in.streams {
		if s.Tenant == t.Name {
			own = append(own, s)
		}
	}
	in.streams = own
	out := TenantReadiness{
		Tenant: t.Name, Receiver: in.receiver, TenantID: t.TenantID, ClientID: t.ClientID, Cloud: t.Cloud,
		CheckedAt:  in.now.UTC(),
		Credential: CredentialStatus{Kind: t.Credential, Configured: t.CredentialPresent},
		Reasons:    []string{}, Warnings: []string{}, Datasets: []DatasetReadiness{},
	}
	tok := in.token
	obtained := !tok.ObtainedAt.IsZero()
	failing := tok.LastError != "" && (!obtained || tok.LastErrorAt.After(tok.ObtainedAt))
	tok.LastError = tokenError(tok.LastError, in.streams)
	out.Token = TokenStatus{
		Obtained: obtained, ObtainedAt: timePtr(tok.ObtainedAt), ExpiresAt: timePtr(tok.ExpiresOn),
		Failing: failing, Roles: nonNil(sortedCopy(tok.Roles)),
		LastError: tok.LastError, LastErrorAt: timePtr(tok.LastErrorAt),
	}

	out.Standby = len(own) > 0
	for _, s := range own {
		if s.State != o365status.StateStandby {
			out.Standby = false
		}
	}

	// Tenant-wide blockers: they stop every dataset.
	var tenantReasons []string
	if !t.CredentialPresent {
		tenantReasons = append(tenantReasons, credentialReason(t))
	}
	switch {
	case failing:
		tenantReasons = append(tenantReasons, tokenReason(tok))
	case !obtained && !out.Standby: // a replica on standby asks for no token
		tenantReasons = append(tenantReasons, "access token: none obtained yet (the receiver asks for one with its first Graph request)")
	}

	roles := map[string]bool{}
	for _, r := range tok.Roles {
		roles[r] = true
	}
	for _, ds := range t.Datasets {
		d := assessDataset(in, ds, obtained, roles, tenantReasons)
		out.Datasets = append(out.Datasets, d)
	}

	out.Reasons = append(out.Reasons, tenantReasons...)
	for _, d := range out.Datasets {
		if !d.CountsForReadiness {
			continue
		}
		for _, r := range d.Reasons[len(tenantReasons):] {
			out.Reasons = append(out.Reasons, d.Name+": "+r)
		}
		for _, w := range d.Warnings {
			out.Warnings = append(out.Warnings, d.Name+": "+w)
		}
	}
	out.Ready = len(out.Reasons) == 0
	return out
}

func assessDataset(in assessInput, ds o365status.Dataset, tokenObtained bool, roles map[string]bool, tenantReasons []string) DatasetReadiness {
	streams := streamsOf(in.streams, in.tenant.Name, ds.Name)
	d := DatasetReadiness{
		Name: ds.Name, CountsForReadiness: in.cfg.counts(ds.Name), Licence: ds.Licence, Latency: ds.Latency,
		Reasons: append([]string{}, tenantReasons...), Warnings: []string{}, Streams: []StreamReadiness{},
		LastPollResult: resultNone,
	}

	// Permissions, from the token's roles claim.
	d.Permissions = PermissionStatus{Required: nonNil(sortedCopy(ds.Permissions)), Granted: []string{}, Missing: []string{}, Known: tokenObtained}
	if tokenObtained {
		for _, p := range d.Permissions.Required {
			if roles[p] {
				d.Permissions.Granted = append(d.Permissions.Granted, p)
			} else {
				d.Permissions.Missing = append(d.Permissions.Missing, p)
			}
		}
		if len(d.Permissions.Missing) > 0 {
			d.Reasons = append(d.Reasons, permissionReason(d.Permissions.Missing, in.tenant.ClientID, in.token.ObtainedAt))
		}
	}

	if len(streams) == 0 {
		// Listed by the receiver's configuration, but no stream runs (e.g. not offered in the tenant's cloud).
		d.State = stateNotRunning
		d.CountsForReadiness = false
		d.Ready = false
		d.Warnings = append(d.Warnings, "not collected: the receiver runs no stream for this dataset (it is not offered in the tenant's cloud, or the receiver has not started it)")
		d.Endpoint = EndpointStatus{Source: sourceNone}
		return d
	}

	// Streams.
	var (
		worst        = ""
		failedKinds  = map[string]bool{}
		streamIssues []string
		maxLag       *float64
	)
	for _, s := range streams {
		sr := streamReadiness(s, in.now)
		d.Streams = append(d.Streams, sr)
		worst = worseState(worst, s.State)
		d.RecordsLastPoll += s.RecordsLastPoll
		d.LastPollEnd = latest(d.LastPollEnd, sr.LastPollEnd)
		d.NextPoll = earliest(d.NextPoll, sr.NextPoll)
		d.LastPollResult = worseResult(d.LastPollResult, sr.LastPollResult, len(d.Streams) == 1)
		if sr.WatermarkLagSeconds != nil && (maxLag == nil || *sr.WatermarkLagSeconds > *maxLag) {
			maxLag = sr.WatermarkLagSeconds
		}
		if s.LastError != "" {
			failedKinds[s.LastErrorKind] = true
		}
		if o365status.LatenessNearLookback(s.MaxLateness, s.Lookback) {
			d.Warnings = append(d.Warnings, fmt.Sprintf("%s: a record arrived %s late (at %s), within %.0f%% of `lookback` (%s): a record a little later would be missed; raise the dataset's `lookback`",
				sr.Name, roundDuration(s.MaxLateness), fmtTime(s.MaxLatenessAt), 100*(1-o365status.LatenessWarnShare), s.Lookback))
		}
		if s.Gaps > 0 {
			d.Warnings = append(d.Warnings, fmt.Sprintf("%s: %s not collected (the content expired first); the latest at %s: %s",
				sr.Name, plural(s.Gaps, "gap"), fmtTime(s.LastGapAt), s.LastGap))
		}
		blocking, text := streamIssue(in.tenant.Name, ds, s, sr)
		switch {
		case text == "":
		case blocking:
			streamIssues = append(streamIssues, text)
		default:
			d.Warnings = append(d.Warnings, text)
		}
	}
	d.State = worst
	d.WatermarkLagSeconds = maxLag
	// The dataset's last success is that of its least recently successful stream.
	for i, sr := range d.Streams {
		if sr.LastSuccess == nil {
			d.LastSuccess = nil
			break
		}
		if i == 0 || sr.LastSuccess.Before(*d.LastSuccess) {
			d.LastSuccess = sr.LastSuccess
		}
	}

	// Endpoint reachability: the last polls answer it when they succeeded; otherwise a probe.
	probe := in.probes[ds.Name]
	switch {
	case worst == o365status.StateStandby:
		d.Endpoint = EndpointStatus{Source: sourceNone}
	case !needsProbe(streams):
		yes := true
		d.Endpoint = EndpointStatus{Reachable: &yes, Source: sourceLastPoll, CheckedAt: d.LastPollEnd}
	case probe != nil:
		ok := probe.ok
		d.Endpoint = EndpointStatus{
			Reachable: &ok, Source: sourceProbe, CheckedAt: timePtr(probe.at),
			Error: probe.message, ErrorKind: probe.kind, Status: probe.status, Code: probe.code,
		}
		if probe.kind == probeKindTimeout || probe.kind == probeKindNotConfigured {
			d.Endpoint.Reachable = nil
		}
	default:
		d.Endpoint = EndpointStatus{Source: sourceNone}
	}
	if probe != nil && needsProbe(streams) {
		r, w := probeFindings(in.tenant.Name, ds, probe, failedKinds, len(tenantReasons) > 0, d.NextPoll)
		if r != "" {
			d.Reasons = append(d.Reasons, r)
		}
		if w != "" {
			d.Warnings = append(d.Warnings, w)
		}
	}
	d.Reasons = append(d.Reasons, streamIssues...)

	if lim := in.cfg.MaxWatermarkLag; lim > 0 && maxLag != nil && *maxLag > lim.Seconds() {
		d.Reasons = append(d.Reasons, fmt.Sprintf("lagging: the newest collected record is %s old (`readiness.max_watermark_lag` is %s)",
			roundDuration(time.Duration(*maxLag*float64(time.Second))), lim))
	}
	d.Ready = len(d.Reasons) == 0
	return d
}

// streamReadiness renders one stream's status.
func streamReadiness(s o365status.StreamStatus, now time.Time) StreamReadiness {
	sr := StreamReadiness{
		Name: streamName(s), Variant: s.Variant, State: s.State,
		Polling:       !s.LastPollStart.IsZero() && s.LastPollStart.After(s.LastPollEnd),
		LastPollStart: timePtr(s.LastPollStart), LastPollEnd: timePtr(s.LastPollEnd), LastSuccess: timePtr(s.LastSuccess),
		LastError: s.LastError, LastErrorKind: s.LastErrorKind, RecordsLastPoll: s.RecordsLastPoll,
		ConsecutiveFailures: s.ConsecutiveFailures, NextPoll: timePtr(s.NextPoll), Watermark: timePtr(s.Watermark),
		BackfillProgress: s.BackfillProgress,
		LookbackSeconds:  s.Lookback.Seconds(), MaxLatenessSeconds: s.MaxLateness.Seconds(),
	}
	switch {
	case s.LastPollEnd.IsZero() && sr.Polling:
		sr.LastPollResult = resultRunning
	case s.LastPollEnd.IsZero():
		sr.LastPollResult = resultNone
	case s.LastError != "":
		sr.LastPollResult = resultFailed
	default:
		sr.LastPollResult = resultOK
	}
	if !s.Watermark.IsZero() {
		lag := max(now.Sub(s.Watermark).Seconds(), 0)
		lag = float64(int64(lag*1000)) / 1000
		sr.WatermarkLagSeconds = &lag
	}
	return sr
}

// streamName is the receiver's name of a stream (what Trigger returns): tenant/dataset[/variant].
func streamName(s o365status.StreamStatus) string {
	n := s.Tenant + "/" + s.Dataset
	if s.Variant != "" {
		n += "/" + s.Variant
	}
	return n
}

// streamIssue says what is wrong with a stream, if anything, and whether it stops readiness.
func streamIssue(tenant string, ds o365status.Dataset, s o365status.StreamStatus, sr StreamReadiness) (bool, string) {
	name := sr.Name
	if s.State == o365status.StateStandby {
		return false, ""
	}
	if s.LastError == "" {
		if s.LastSuccess.IsZero() {
			if sr.Polling {
				return true, fmt.Sprintf("%s: the first poll has not finished yet (running since %s)", name, fmtTime(s.LastPollStart))
			}
			return true, fmt.Sprintf("%s: the first poll has not run yet", name)
		}
		return false, ""
	}
	text := fmt.Sprintf("%s: last poll failed at %s — %s: %s", name, fmtTime(s.LastPollEnd), kindPhrase(s.LastErrorKind, ds), s.LastError)
	blocking := s.LastSuccess.IsZero() || s.State == o365status.StateCoolingDown || hardKinds[s.LastErrorKind]
	switch {
	case s.State == o365status.StateCoolingDown:
		text += fmt.Sprintf("; cooling down after %s in a row, next retry at %s", plural(s.ConsecutiveFailures, "failed poll"), fmtTime(s.NextPoll))
	case !s.NextPoll.IsZero():
		text += fmt.Sprintf("; next poll at %s", fmtTime(s.NextPoll))
	}
	if s.LastErrorKind == o365status.ErrorPermission || s.LastErrorKind == o365status.ErrorLicence || s.LastErrorKind == o365status.ErrorAuditingDisabled {
		text += fmt.Sprintf(" (after fixing it, POST /run/%s?dataset=%s retries at once)", tenant, ds.Name)
	} else if !blocking {
		text += fmt.Sprintf(" (the stream cools down after %d failed polls in a row)", o365status.CoolDownAfter)
	}
	return blocking, text
}

// kindPhrase explains an error kind in words.
func kindPhrase(kind string, ds o365status.Dataset) string {
	switch kind {
	case o365status.ErrorLicence:
		return fmt.Sprintf("licence: the tenant lacks %s, which %s needs", ds.Licence, ds.Name)
	case o365status.ErrorPermission:
		return fmt.Sprintf("permission: Graph refused the request (403); the app needs %s with admin consent", strings.Join(ds.Permissions, ", "))
	case o365status.ErrorAuth:
		return "authentication: no usable access token"
	case o365status.ErrorThrottled:
		return "throttled by Graph (429 / Retry-After)"
	case o365status.ErrorTransient:
		return "transient Graph failure (5xx, timeout, dropped connection or truncated page)"
	case o365status.ErrorBadRequest:
		return "Graph rejected the request (4xx)"
	case o365status.ErrorStorage:
		return "checkpoint storage failed"
	case o365status.ErrorAuditingDisabled:
		return "auditing: the tenant's unified audit logging is turned off, so the Management Activity API serves it no content; " +
			"turn it on in Microsoft Purview (Audit) or with Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true"
	case o365status.ErrorForeignHost:
		return "Graph sent a link to another host, not followed so that the token stays with Graph (a proxy rewriting links, or a misconfigured graph_endpoint)"
	case "":
		return "failed"
	}
	return kind
}

// probeFindings turns a probe result into a reason (it explains a failure the streams do not already
// explain) or a warning (inconclusive, or the endpoint answers again while the streams still fail).
func probeFindings(tenant string, ds o365status.Dataset, p *probeResult, failedKinds map[string]bool, tokenReported bool, nextPoll *time.Time) (string, string) {
	at := fmtTime(p.at)
	switch {
	case p.ok:
		if len(failedKinds) == 0 {
			return "", ""
		}
		when := "its next poll"
		if nextPoll != nil {
			when = "its next poll at " + fmtTime(*nextPoll)
		}
		return "", fmt.Sprintf("the endpoint answers now (probe at %s); the stream recovers with %s, or POST /run/%s?dataset=%s polls at once", at, when, tenant, ds.Name)
	case p.kind == probeKindTimeout, p.kind == o365status.ErrorTransient, p.kind == o365status.ErrorThrottled:
		return "", fmt.Sprintf("probe at %s was inconclusive (%s): %s", at, p.kind, p.message)
	case p.kind == probeKindNotConfigured:
		return "", ""
	case failedKinds[p.kind]:
		return "", "" // the stream's failure says the same, with its own request ids
	case p.kind == o365status.ErrorAuth && tokenReported:
		return "", ""
	}
	return fmt.Sprintf("probe at %s failed — %s: %s", at, kindPhrase(p.kind, ds), p.message), ""
}

func credentialReason(t o365status.Tenant) string {
	if t.Credential == "client_secret" {
		return "credential: no client secret is configured (`client_secret` is empty and the O365_SECRET_<TENANT_ID> environment variable is not set)"
	}
	return fmt.Sprintf("credential: the configured %s is not usable", t.Credential)
}

var aadstsPattern = regexp.MustCompile(`AADSTS\d+`)

// tokenError is the best description of the tenant's token failure: the one that quotes the token
// endpoint's AADSTS answer. The receiver's TokenInfo.LastError may instead hold the cancellation of a
// concurrent token request — the receiver cancels its other backfill slices when one fails, and
// internal/graph records that cancellation ("ClientSecretCredential: server response error:", its cause
// cut off) as the token's last error, overwriting the endpoint's answer — while the streams' auth errors
// still quote it.
func tokenError(last string, streams []o365status.StreamStatus) string {
	if last == "" || aadstsPattern.MatchString(last) {
		return last
	}
	const marker = "cannot obtain an access token: "
	for _, s := range streams {
		if s.LastErrorKind != o365status.ErrorAuth || !aadstsPattern.MatchString(s.LastError) {
			continue
		}
		if _, rest, ok := strings.Cut(s.LastError, marker); ok {
			if i := strings.LastIndex(rest, " (client-request-id "); i > 0 {
				rest = rest[:i]
			}
			return rest
		}
	}
	return last
}

// aadstsHints are the token endpoint errors operators meet most, with what to do about them.
var aadstsHints = map[string]string{
	"AADSTS7000215": "the client secret is wrong (use the secret's value, not its id) or was replaced: create a new secret under Certificates & secrets and update `client_secret`",
	"AADSTS7000222": "the client secret has expired: create a new one under Certificates & secrets and update `client_secret`",
	"AADSTS700016":  "the application (`client_id`) is not registered in this tenant, or was not consented to in it",
	"AADSTS90002":   "the `tenant_id` does not exist in this cloud (check `cloud`)",
	"AADSTS700027":  "the client certificate is not registered for the app, or has expired",
	"AADSTS7000112": "the application is disabled",
}

func tokenReason(tok o365status.TokenInfo) string {
	r := fmt.Sprintf("access token: the token endpoint refused since %s: %s", fmtTime(tok.LastErrorAt), tok.LastError)
	if code := aadstsPattern.FindString(tok.LastError); code != "" {
		if hint, ok := aadstsHints[code]; ok {
			r += " — " + hint
		}
	}
	return r
}

func permissionReason(missing []string, clientID string, issued time.Time) string {
	return fmt.Sprintf("permission: %s is not granted — it is missing from the roles claim of the access token (issued %s); add it to app %s as a Microsoft Graph application permission and grant admin consent (the receiver sees it with its next token, within the hour, or at once after a restart)",
		strings.Join(missing, ", "), fmtTime(issued), clientID)
}

// stateRank orders stream states from best to worst.
var stateRank = map[string]int{
	o365status.StateOK: 0, o365status.StateStandby: 1, o365status.StateStarting: 2, o365status.StateFailing: 3,
	o365status.StateCoolingDown: 4,
}

func worseState(a, b string) string {
	if a == "" {
		return b
	}
	if stateRank[b] > stateRank[a] {
		return b
	}
	return a
}

var resultRank = map[string]int{resultOK: 0, resultRunning: 1, resultNone: 2, resultFailed: 3}

func worseResult(acc, r string, first bool) string {
	if first || resultRank[r] > resultRank[acc] {
		return r
	}
	return acc
}

func latest(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.After(*a)) {
		return b
	}
	return a
}

func earliest(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.Before(*a)) {
		return b
	}
	return a
}

// timePtr is t in UTC, or nil when zero (the JSON field is then absent).
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute)
	case d >= time.Minute:
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func sortedCopy(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}

func nonNil(in []string) []string {
	if in == nil {
		return []string{}
	}
	return in
}

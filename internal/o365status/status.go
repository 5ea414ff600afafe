// Package o365status is the small, explicit interface between the o365 receiver and the extensions
// that report on it (o365_readiness): the receiver registers itself as a Provider with every extension
// on the host that is a Registrar, and unregisters at shutdown. No global state is shared.
package o365status

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/otelcol-o365/otelcol-o365/internal/graph"
)

// ErrNotConfigured is returned for a tenant or dataset the receiver does not collect.
var ErrNotConfigured = errors.New("not configured")

// ErrAuditingDisabled is in the errors of the Management Activity API datasets (polls and probes) when
// the API refuses the tenant because its unified audit logging is turned off: kind ErrorAuditingDisabled.
var ErrAuditingDisabled = errors.New("auditing disabled")

// Registrar is implemented by extensions that want to know about running o365 receivers.
type Registrar interface {
	RegisterProvider(id component.ID, p Provider)
	UnregisterProvider(id component.ID)
}

// Provider is what an o365 receiver tells about itself. Nothing it returns contains a secret or token.
type Provider interface {
	// Tenants describes the configured tenants and their datasets.
	Tenants() []Tenant
	// Streams reports the status of every tenant × dataset × source.
	Streams() []StreamStatus
	// Tenant describes the tenant of that name (false: none). With thousands of tenants, one tenant's
	// route must not cost what Tenants and Streams do.
	Tenant(name string) (Tenant, bool)
	// TenantStreams reports the status of the tenant's streams.
	TenantStreams(tenant string) []StreamStatus
	// Token describes the tenant's current access token (never the token itself).
	Token(tenant string) TokenInfo
	// Probe sends one cheap request ($top=1 where supported) for the dataset, to tell whether the
	// endpoint is reachable with the granted permissions and licences. nil means it answered 200.
	Probe(ctx context.Context, tenant, dataset string) error
	// Trigger asks for an immediate poll of the tenant's datasets (all when dataset is ""), and
	// returns the streams started.
	Trigger(tenant, dataset string) ([]string, error)
}

// Tenant is a configured tenant, without its credentials.
type Tenant struct {
	Name     string
	TenantID string
	ClientID string
	Cloud    string
	// Credential is the kind of credential configured: client_secret, client_certificate,
	// workload_identity or managed_identity.
	Credential string
	// CredentialPresent is false when the secret (or its environment variable) is empty.
	CredentialPresent bool
	Datasets          []Dataset
}

// Dataset is one dataset a tenant collects, with what Graph requires for it.
type Dataset struct {
	Name string
	// Permissions are the application permissions the dataset's sources need.
	Permissions []string
	Licence     string
	Latency     string
}

// TokenInfo describes a tenant's access token without revealing it (the Graph client's own record).
type TokenInfo = graph.TokenInfo

// StreamStatus is what the receiver knows about one tenant × dataset (× source).
type StreamStatus struct {
	Tenant, Dataset, Variant   string
	State                      string
	LastPollStart, LastPollEnd time.Time
	LastSuccess                time.Time
	LastError                  string
	LastErrorKind              string
	RecordsLastPoll            int
	ConsecutiveFailures        int
	NextPoll                   time.Time
	// Watermark is the stream's position (event streams): the newest committed record time, or the end
	// of the last complete read when that is later.
	Watermark time.Time
	// BackfillProgress is the share of the current window already emitted (1 when caught up).
	BackfillProgress float64
	// Lookback is how late a record of the stream may arrive and still be collected (event streams).
	Lookback time.Duration
	// MaxLateness is the largest lateness of a record seen since the receiver started (a record new to
	// the stream, older than the position it arrived behind), and MaxLatenessAt when it was seen.
	MaxLateness   time.Duration
	MaxLatenessAt time.Time
	// Gaps counts what the stream could not collect and skipped since the receiver started (the
	// Management Activity API's content that expired first); LastGap describes the latest, at LastGapAt.
	Gaps      int
	LastGap   string
	LastGapAt time.Time
}

// LatenessWarnShare: a lateness within this share of the lookback is warned about (log, readiness):
// a record a little later would not have been collected.
const LatenessWarnShare = 0.8

// LatenessNearLookback reports whether lateness has come within LatenessWarnShare of lookback.
func LatenessNearLookback(lateness, lookback time.Duration) bool {
	return lookback > 0 && float64(lateness) >= LatenessWarnShare*float64(lookback)
}

// Error kinds: the values of StreamStatus.LastErrorKind (and of the receiver's poll error metric's
// `kind`). A failed Graph request has its graph.Kind; the receiver adds two of its own.
var (
	ErrorTransient  = graph.KindTransient.String()
	ErrorThrottled  = graph.KindThrottled.String()
	ErrorAuth       = graph.KindAuth.String()
	ErrorPermission = graph.KindPermission.String()
	ErrorLicence    = graph.KindLicence.String()
	ErrorBadRequest = graph.KindBadRequest.String()
	// ErrorForeignHost: Graph returned a link to another host, which is not followed (no token leaves).
	ErrorForeignHost = graph.KindForeignHost.String()
)

const (
	// ErrorStorage: the checkpoint could not be read or written.
	ErrorStorage = "storage"
	// ErrorLeaseLost: another collector replica took the tenant over; this one stops polling it.
	ErrorLeaseLost = "lease_lost"
	// ErrorAuditingDisabled: the Management Activity API refused the subscription because the tenant's
	// unified audit logging is turned off; an admin has to turn it on.
	ErrorAuditingDisabled = "auditing_disabled"
)

// CoolDownAfter is the number of consecutive failed polls after which a stream cools down
// (StateCoolingDown): its polls are spaced out, doubling up to the receiver's `max_cooldown`.
const CoolDownAfter = 3

// Stream states.
const (
	StateStarting = "starting"
	StateOK       = "ok"
	// StateFailing: the last poll failed; the next one comes after the usual interval.
	StateFailing = "failing"
	// StateCoolingDown: several consecutive failures, or a 403: polls are spaced out until one succeeds.
	StateCoolingDown = "cooling_down"
	// StateStandby: another collector replica holds the tenant's lease and polls it; this replica does
	// not (the receiver's lease coordination over a shared storage extension).
	StateStandby = "standby"
)

// Package graphsim is a faithful fake of the Microsoft Graph endpoints otelcol-o365 reads and of the
// Entra ID endpoints azidentity talks to. It serves HTTPS with a generated certificate, generates
// deterministic data lazily from a seed (tens to millions of records, never all in memory), and injects
// faults (latency, throttling, 5xx, truncated, invalid or incomplete pages, paging loops, nextLinks to a
// foreign host, late arrival, expiring tokens) by configuration. Its token endpoints issue tokens only for
// the Graph resource of the cloud it stands in for (Config.Cloud), as Entra ID does.
//
// Graph (v1.0 and beta), by receiver dataset name:
//
//	signins                      GET /v1.0/auditLogs/signIns, or beta without a signInEventTypes clause
//	signins_non_interactive      GET /beta/auditLogs/signIns?$filter=signInEventTypes/any(t: t eq 'nonInteractiveUser') and …
//	signins_service_principal    … t eq 'servicePrincipal' …
//	signins_managed_identity     … t eq 'managedIdentity' …
//	directory_audits             GET /v1.0/auditLogs/directoryAudits
//	security_alerts              GET /v1.0/security/alerts_v2 (versioned: one record per alert update)
//	risk_detections              GET /v1.0/identityProtection/riskDetections
//	role_assignments             GET /v1.0/roleManagement/directory/roleAssignments[?$expand=principal,roleDefinition]
//	role_eligibility_schedules   GET /v1.0/roleManagement/directory/roleEligibilitySchedules[?$expand=…]
//	conditional_access_policies  GET /v1.0/identity/conditionalAccess/policies
//	mfa_coverage                 GET /v1.0/reports/authenticationMethods/userRegistrationDetails
//	security_incidents           GET /v1.0/security/incidents[?$expand=alerts] (versioned: one record per incident update)
//	intune_audit_events          GET /v1.0/deviceManagement/auditEvents
//	risky_users                  GET /v1.0/identityProtection/riskyUsers
//
// The first seven, security_incidents and intune_audit_events are event streams (filtered and ordered
// by time, paged with $skiptoken, ground truth from IDs and Keys, extended at run time with Inject); the
// others are snapshots (listed whole, ground truth from Items, changed at run time with SetItem and
// RemoveItem).
//
// Identity: POST /{tenant}/oauth2/v2.0/token (client credentials with a client secret, a certificate's
// client assertion — verified — or a workload identity's federated token), GET
// /{tenant}/v2.0/.well-known/openid-configuration, and the App Service managed identity endpoint
// GET /msi/token (ManagedIdentityEndpoint).
//
// Facts it honours are listed in ../../../shared/GRAPH.md; the receiver's tests, the benchmarks and the
// `make run` demo all run against it.
package graphsim

import (
	"errors"
	"fmt"
	"log"
	"maps"
	"os"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config describes one simulated Microsoft cloud: its tenants, their data and the faults to inject.
type Config struct {
	// Addr to listen on; default 127.0.0.1:0 (a free port).
	Addr string `yaml:"addr"`
	// Seed makes every generated record deterministic.
	Seed uint64 `yaml:"seed"`
	// Anchor is the instant that separates historical records (before it) from live ones (after it).
	// Zero means the time the server starts. It is truncated to whole milliseconds (the coarsest
	// timestamp resolution the simulated datasets use).
	Anchor time.Time `yaml:"anchor"`
	// Cloud is the Microsoft cloud the simulator stands in for: public (default), usgov, usgovdod or
	// china. Its token endpoint issues tokens for that cloud's Graph resource only (as Entra ID does,
	// refusing any other resource with AADSTS500011, the simulator's own URL included), and its Graph
	// accepts only those tokens.
	Cloud string `yaml:"cloud"`
	// Tenants served by this simulator. Tokens carry the tenant id, which selects the data.
	Tenants []Tenant `yaml:"tenants"`
	// ManagedIdentities are the identities assigned to "this host": the simulator serves the App Service
	// managed identity protocol for them at ManagedIdentityEndpoint (IDENTITY_ENDPOINT). At most one is
	// system-assigned; the others are user-assigned and selected by client_id.
	ManagedIdentities []ManagedIdentity `yaml:"managed_identities"`
	// IdentityHeader is the secret the managed identity endpoint expects in X-IDENTITY-HEADER (what App
	// Service puts in IDENTITY_HEADER). Empty accepts any non-empty header.
	IdentityHeader string `yaml:"identity_header"`
	// TokenTTL is the lifetime of issued access tokens (default 3599 s: Entra ID's expires_in).
	TokenTTL time.Duration `yaml:"token_ttl"`
	// MaxPageSize caps every dataset's $top (default 1000, the largest any simulated API accepts;
	// datasets with a smaller documented maximum keep theirs).
	MaxPageSize int `yaml:"max_page_size"`
	// PageCap serves at most this many records a page whatever the $top (0 = no cap): a valid $top above
	// it is accepted, not refused, and pages come back short — Graph documents neither way.
	PageCap int `yaml:"page_cap"`
	// NextLinkFirst places @odata.nextLink before "value" in pages (Graph does both).
	NextLinkFirst bool `yaml:"next_link_first"`
	// IgnoreOrderBy accepts $orderby but lists every collection in Graph's default order, newest first,
	// as a proxy that strips the option or an API that does not honour it would. Graph documents
	// $orderby on sign-ins and audits, but a client must check the order it gets (GRAPH.md "Robustness").
	IgnoreOrderBy bool `yaml:"ignore_orderby"`
	// ShufflePages lists each event-stream page's records in a random (seeded, per request) order: the
	// page holds the records it would, but in no time order.
	ShufflePages bool `yaml:"shuffle_pages"`
	// ForeignNextLinks points every @odata.nextLink at another host: a second HTTPS listener of the
	// simulator (ForeignURL: https://localhost:<another port>) that serves the same Graph and records
	// every request it receives with its Authorization header (ForeignRequests). A client must not send
	// its token there. Switch it at run time with SetForeignNextLinks.
	ForeignNextLinks bool `yaml:"foreign_next_links"`
	// RelativeNextLinks writes every @odata.nextLink without scheme and host ("/v1.0/…?$skiptoken=…"):
	// Graph writes them absolute, OData allows relative URLs.
	RelativeNextLinks bool `yaml:"relative_next_links"`
	// RetryAfterHTTPDate sends Retry-After as an HTTP-date (RFC 9110 §10.2.3) instead of delta-seconds;
	// HTTP allows both and Graph documents only seconds.
	RetryAfterHTTPDate bool `yaml:"retry_after_http_date"`
	// Latency is added to every Graph and Management Activity API response (not to token requests).
	Latency time.Duration `yaml:"latency"`
	// Faults are injected at random (seeded) into Graph responses.
	Faults []Fault `yaml:"faults"`
	// RateLimits enforce Graph's documented throttling limits per dataset family.
	RateLimits RateLimits `yaml:"rate_limits"`
	// ErrorLog receives the HTTP server's own errors (TLS handshakes of clients that do not trust the
	// certificate, connections dropped mid-request, ...). Nil discards them.
	ErrorLog *log.Logger `yaml:"-"`
}

// Tenant is one simulated Entra ID tenant.
type Tenant struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Apps registered in the tenant; each may request tokens with its secret, certificate or federated
	// token.
	Apps []App `yaml:"apps"`
	// Unlicensed makes premium (Entra ID P1/P2) endpoints answer 403, as a tenant without the licence.
	Unlicensed bool `yaml:"unlicensed"`
	// AuditingDisabled turns the tenant's unified audit logging off: the Management Activity API refuses
	// to start its subscriptions (see Server.SetAuditingDisabled).
	AuditingDisabled bool `yaml:"auditing_disabled"`
	// Datasets to generate, by receiver dataset name. Event streams: signins (interactive),
	// signins_non_interactive, signins_service_principal, signins_managed_identity, directory_audits,
	// security_alerts, risk_detections, security_incidents, intune_audit_events. Snapshots:
	// role_assignments, role_eligibility_schedules, conditional_access_policies, mfa_coverage,
	// risky_users. A dataset left out is served empty.
	Datasets map[string]DatasetSpec `yaml:"datasets"`
	// Scenarios to inject into the tenant's data (scenarios.go): brute_force, password_spray,
	// privileged_user_without_mfa, policy_report_only, impossible_travel.
	Scenarios []string `yaml:"scenarios"`
}

// App is an app registration with its credentials and granted application permissions.
type App struct {
	ClientID string `yaml:"client_id"`
	// Secret is the client secret ("" = the app has none).
	Secret string `yaml:"secret"`
	// Certificate is the PEM of the app's certificate (its public part, as uploaded to the app
	// registration). The token endpoint then accepts client assertions signed with its private key.
	Certificate string `yaml:"certificate"`
	// FederatedToken is accepted as a client assertion, as a workload identity's federated token.
	// Simplification: Entra ID validates such a token's signature with the keys of the issuer named in
	// the app's federated identity credential and matches its issuer, subject and audience; the
	// simulator only compares the assertion with this value.
	FederatedToken string `yaml:"federated_token"`
	// Roles are the application permissions granted (admin-consented); they appear in the token's
	// `roles` claim and are checked by every Graph endpoint.
	Roles []string `yaml:"roles"`
}

// ManagedIdentity is a managed identity assigned to the host the collector runs on.
type ManagedIdentity struct {
	// ClientID of the identity (its application id); tokens carry it as appid.
	ClientID string `yaml:"client_id"`
	// TenantID the identity lives in (one of Config.Tenants).
	TenantID string `yaml:"tenant_id"`
	// Roles are the application permissions granted to the identity's service principal.
	Roles []string `yaml:"roles"`
	// SystemAssigned marks the host's system-assigned identity, used when a request names no client_id.
	SystemAssigned bool `yaml:"system_assigned"`
}

// DatasetSpec sizes one dataset of a tenant.
//
// For an event stream: Count historical records spread evenly over Span before the anchor, then
// RatePerSecond live ones. For a snapshot (role_assignments, role_eligibility_schedules,
// conditional_access_policies, mfa_coverage): Count items (mfa_coverage: users), generated on first use;
// the other fields do not apply.
type DatasetSpec struct {
	// Count historical records spread evenly over Span before the anchor (snapshots: the number of items).
	Count int           `yaml:"count"`
	Span  time.Duration `yaml:"span"`
	// PerTimestamp records share each timestamp (default 1); >1 exercises ties across page boundaries.
	PerTimestamp int `yaml:"per_timestamp"`
	// RatePerSecond live records keep appearing after the anchor (0 = none).
	RatePerSecond float64 `yaml:"rate_per_second"`
	// LateFraction of records become visible only LateDelay after their own timestamp.
	LateFraction float64       `yaml:"late_fraction"`
	LateDelay    time.Duration `yaml:"late_delay"`
	// Versions (security_alerts, security_incidents, risk_detections; default 1): record i is version i%Versions of item
	// i/Versions — the same id, republished with a later time field as the item changes. Requires
	// PerTimestamp 1 (two versions of one item never share a time).
	Versions int `yaml:"versions"`
	// OmitNextLink serves pages without @odata.nextLink even when more records match, as alerts_v2
	// sometimes does (elastic/integrations#20234): a client has to page by time instead.
	OmitNextLink bool `yaml:"omit_next_link"`
	// OmitNextLinkEvery omits @odata.nextLink from every n-th page served that has more records (the
	// n-th, 2n-th, ...; the first pages keep theirs): "sometimes", as alerts_v2 does.
	OmitNextLinkEvery int `yaml:"omit_next_link_every"`
}

// Fault is a randomly injected failure of Graph requests.
//
// Faults apply to requests that passed authentication (a request without a valid token gets its 401
// whatever is scripted). A "status" fault answers before the endpoint checks the app's permission and
// the tenant's licence, as a throttling gateway or an unavailable service does. The other kinds damage
// a 200 response, so they apply only to a request that would succeed: a request refused with 400/403
// leaves a scripted one queued for the next request.
type Fault struct {
	// Kind is one of:
	//   - "status": answer Status with a Graph error body;
	//   - "truncate": a 200 whose JSON body is cut short;
	//   - "reset": the connection is dropped mid-body;
	//   - "invalid_json": a complete 200 whose body is not valid JSON;
	//   - "no_value": a valid JSON page without its "value" array;
	//   - "empty_next": an empty page ("value": []) whose @odata.nextLink continues the same query (its
	//     records come on the next page), as Graph sends for sign-ins;
	//   - "next_loop": the real page, with an @odata.nextLink pointing back at the page itself;
	//   - "no_next": the real page without its @odata.nextLink: the listing ends early, as if complete;
	//   - "drop_items": the real page without the last Share of its items (rounded up), its
	//     @odata.nextLink kept: a listing served by a replica that has not caught up (eventual
	//     consistency), which misses items that exist.
	Kind string `yaml:"kind"`
	// Status for kind "status": 429, 500, 503, 504, ...
	Status int `yaml:"status"`
	// RetryAfter sent with the status (429/503); 0 = no header.
	RetryAfter time.Duration `yaml:"retry_after"`
	// Probability of the fault on each Graph request (0..1).
	Probability float64 `yaml:"probability"`
	// Path restricts the fault to request paths containing this string ("" = all).
	Path string `yaml:"path"`
	// After (scripted faults only, FailNext) lets this many matching requests through unharmed first:
	// After 2 on a snapshot's path fails the listing at its third page, half-way.
	After int `yaml:"after"`
	// Share of the page's items that a "drop_items" fault leaves out (0 < Share <= 1).
	Share float64 `yaml:"share"`
}

// RateLimits enforces documented Graph service limits. Only families listed are enforced.
type RateLimits struct {
	Enforce bool `yaml:"enforce"`
	// Families maps a family name ("reports", ...) to its limit; defaults to Graph's documented ones.
	Families map[string]Limit `yaml:"families"`
}

// Limit is "Requests per Window", per app per tenant and per app across tenants.
type Limit struct {
	TenantRequests int           `yaml:"tenant_requests"`
	AppRequests    int           `yaml:"app_requests"`
	Window         time.Duration `yaml:"window"`
	// OmitRetryAfter answers 429 without a Retry-After header (identity protection does this).
	OmitRetryAfter bool `yaml:"omit_retry_after"`
	// TenantWide counts TenantRequests over every app of the tenant rather than per app (identity
	// protection's limit is per tenant across all apps).
	TenantWide bool `yaml:"tenant_wide"`
}

// DefaultLimits are Graph's documented limits (learn.microsoft.com/graph/throttling-limits), by the
// family each dataset belongs to:
//
//   - reports (sign-ins, directory audits, userRegistrationDetails): 5 requests / 10 s per app per
//     tenant, 122 / 10 s per app across tenants.
//   - identity_protection (riskDetections, conditional access policies): 1 request / s per tenant
//     across all apps; the 429 carries no Retry-After.
//   - security (alerts_v2): 150 requests / min per app per tenant.
//   - directory (roleAssignments, PIM schedules): Graph meters these with a token bucket of "resource
//     units" (3,500 / 5,000 / 8,000 per 10 s per app per tenant for small / medium / large tenants,
//     a list request costing a few units). Simplification: 100 requests / 10 s per app per tenant, a
//     conservative floor that a snapshot poller never approaches.
func DefaultLimits() map[string]Limit {
	return map[string]Limit{
		"reports":             {TenantRequests: 5, AppRequests: 122, Window: 10 * time.Second},
		"identity_protection": {TenantRequests: 1, Window: time.Second, OmitRetryAfter: true, TenantWide: true},
		"security":            {TenantRequests: 150, Window: time.Minute},
		"directory":           {TenantRequests: 100, Window: 10 * time.Second},
	}
}

// LoadConfig reads a YAML simulator configuration.
func LoadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func (c *Config) applyDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.Cloud == "" {
		c.Cloud = "public"
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = 3599 * time.Second
	}
	if c.MaxPageSize == 0 {
		c.MaxPageSize = 1000
	}
	if c.RateLimits.Families == nil {
		c.RateLimits.Families = DefaultLimits()
	}
	// Copy before filling in: the caller's tenants and dataset maps are shared with c, and one spec map
	// may serve several simulators at once.
	c.Tenants = slices.Clone(c.Tenants)
	for i := range c.Tenants {
		datasets := maps.Clone(c.Tenants[i].Datasets)
		for name, ds := range datasets {
			if ds.PerTimestamp <= 0 {
				ds.PerTimestamp = 1
			}
			if ds.Span == 0 {
				ds.Span = time.Hour
			}
			if ds.Versions <= 0 {
				ds.Versions = 1
			}
			datasets[name] = ds
		}
		c.Tenants[i].Datasets = datasets
		c.Tenants[i].Apps = slices.Clone(c.Tenants[i].Apps)
	}
	c.ManagedIdentities = slices.Clone(c.ManagedIdentities)
}

func (c *Config) validate() error {
	var errs []error
	if _, ok := graphResources[c.Cloud]; !ok {
		errs = append(errs, fmt.Errorf("cloud %q is not one of public, usgov, usgovdod, china", c.Cloud))
	}
	seen := map[string]bool{}
	for i, t := range c.Tenants {
		if t.ID == "" {
			errs = append(errs, fmt.Errorf("tenants[%d].id is required", i))
		}
		if seen[t.ID] {
			errs = append(errs, fmt.Errorf("tenants[%d].id %q is duplicated", i, t.ID))
		}
		seen[t.ID] = true
		for j, app := range t.Apps {
			if app.Certificate != "" {
				if _, err := parseCertificatePEM(app.Certificate); err != nil {
					errs = append(errs, fmt.Errorf("tenants[%d].apps[%d].certificate: %w", i, j, err))
				}
			}
		}
		if err := validateScenarios(t); err != nil {
			errs = append(errs, fmt.Errorf("tenants[%d].scenarios: %w", i, err))
		}
		for name, spec := range t.Datasets {
			def, ok := datasetsByName[name]
			if !ok {
				errs = append(errs, fmt.Errorf("tenants[%d].datasets: unknown dataset %q", i, name))
				continue
			}
			if err := def.validate(spec, t); err != nil {
				errs = append(errs, fmt.Errorf("tenants[%d].datasets.%s: %w", i, name, err))
			}
		}
	}
	systemAssigned := 0
	for i, mi := range c.ManagedIdentities {
		if mi.ClientID == "" {
			errs = append(errs, fmt.Errorf("managed_identities[%d].client_id is required", i))
		}
		if !seen[mi.TenantID] {
			errs = append(errs, fmt.Errorf("managed_identities[%d].tenant_id %q is not one of the tenants", i, mi.TenantID))
		}
		if mi.SystemAssigned {
			systemAssigned++
		}
	}
	if systemAssigned > 1 {
		errs = append(errs, errors.New("managed_identities: a host has at most one system-assigned identity"))
	}
	for i, f := range c.Faults {
		if f.After != 0 {
			errs = append(errs, fmt.Errorf("faults[%d].after applies to scripted faults (FailNext) only", i))
		}
		switch f.Kind {
		case "status":
			if f.Status < 400 {
				errs = append(errs, fmt.Errorf("faults[%d].status must be an HTTP error status", i))
			}
		case "drop_items":
			if f.Share <= 0 || f.Share > 1 {
				errs = append(errs, fmt.Errorf("faults[%d].share must be in (0, 1] for kind drop_items", i))
			}
		case "truncate", "reset", "invalid_json", "no_value", "empty_next", "next_loop", "no_next":
		default:
			errs = append(errs, fmt.Errorf("faults[%d].kind %q is not one of status, truncate, reset, invalid_json, no_value, empty_next, next_loop, no_next, drop_items", i, f.Kind))
		}
	}
	return errors.Join(errs...)
}

package o365receiver

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graph"
)

// Config is the `o365` receiver's configuration.
type Config struct {
	// Storage is the id of a storage extension (sql_storage, file_storage, ...) that keeps watermarks and
	// dedup state across restarts. Without one, state is in memory and a restart re-collects from
	// `initial_lookback` (with duplicates).
	Storage *component.ID `mapstructure:"storage"`
	// PollInterval is the default time between polls of each dataset.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// Lookback is how late an event may become visible in Graph and still be collected exactly once:
	// every poll re-reads [position − lookback, now] and drops what it already emitted. Unset (0), each
	// dataset uses its own default, fitted to Microsoft's documented latency for it; a dataset's own
	// `lookback` wins over this one.
	Lookback time.Duration `mapstructure:"lookback"`
	// InitialLookback is how far back the first poll of a dataset starts.
	InitialLookback time.Duration `mapstructure:"initial_lookback"`
	// GraphEndpoint and AuthorityHost override the hosts of each tenant's `cloud` (national clouds are
	// built in; set these for the simulator or a proxy).
	GraphEndpoint string `mapstructure:"graph_endpoint"`
	AuthorityHost string `mapstructure:"authority_host"`
	// GraphResource overrides the resource tokens are requested for (scope: it + "/.default"). By
	// default each tenant's `cloud` decides it — not `graph_endpoint`, which may be a proxy or a private
	// endpoint that Entra ID knows nothing of.
	GraphResource string `mapstructure:"graph_resource"`
	// ManagementEndpoint and ManagementResource override the Office 365 Management Activity API's host
	// and token resource of each tenant's `cloud` (the audit datasets): GCC tenants set both to
	// https://manage-gcc.office.com; the simulator sets the endpoint. Tokens for it go only to its host.
	ManagementEndpoint string `mapstructure:"management_endpoint"`
	ManagementResource string `mapstructure:"management_resource"`
	// PageSize is the $top of every event-stream request, capped at the dataset's documented maximum
	// (catalog MaxPageSize); snapshot requests send none (README, `page_size`).
	PageSize int `mapstructure:"page_size"`
	// HTTP client settings (TLS, proxy, timeout) used for both Graph and the token endpoint.
	HTTP confighttp.ClientConfig `mapstructure:"http"`
	// RetryOnFailure backs off transient Graph failures and retryable consumer errors.
	RetryOnFailure configretry.BackOffConfig `mapstructure:"retry_on_failure"`
	// RateLimits are request budgets per Graph throttling family; defaults are Graph's documented limits.
	RateLimits map[string]RateLimit `mapstructure:"rate_limits"`
	// RateLimitMargin widens every budget window so network jitter cannot overrun Graph's count.
	RateLimitMargin time.Duration `mapstructure:"rate_limit_margin"`
	// RateLimitMaxMargin bounds how far a window's margin widens after Graph answered 429 to a request
	// the window had room for; at or below RateLimitMargin the margin stays fixed.
	RateLimitMaxMargin time.Duration `mapstructure:"rate_limit_max_margin"`
	// MaxConcurrentRequests bounds the requests one dataset has in flight: a window longer than a page
	// (first start, outage) is read in time spans fetched concurrently and emitted in time order, so
	// slow pages still fill the request budget.
	MaxConcurrentRequests int `mapstructure:"max_concurrent_requests"`
	// PollWorkers bounds the polls in progress at once, across all tenants and datasets: due polls wait
	// for a free worker, in the order they fell due.
	PollWorkers int `mapstructure:"poll_workers"`
	// SpreadFirstPolls places the first poll of a stream that has a stored position less than an
	// interval old (after a restart, or taken over from another replica) at a fixed offset into its
	// interval, so that the streams of thousands of tenants do not all poll at once; new streams and
	// streams more than an interval behind still poll at once.
	SpreadFirstPolls bool `mapstructure:"spread_first_polls"`
	// MaxCooldown caps the growing pause after consecutive failed polls of a dataset.
	MaxCooldown time.Duration `mapstructure:"max_cooldown"`
	// ForbiddenRetryInterval is how often a dataset answering 403 (permission not granted, licence
	// missing) is tried again.
	ForbiddenRetryInterval time.Duration `mapstructure:"forbidden_retry_interval"`
	// Tenants to collect from.
	Tenants []TenantConfig `mapstructure:"tenants"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// RateLimit is a Graph request budget: at most TenantRequests per Window per app in one tenant, and
// AppRequests per Window per app across all tenants that share its client_id.
type RateLimit struct {
	TenantRequests int           `mapstructure:"tenant_requests"`
	AppRequests    int           `mapstructure:"app_requests"`
	Window         time.Duration `mapstructure:"window"`

	_ struct{}
}

// TenantConfig is one Entra ID tenant and the app registration used to read it.
type TenantConfig struct {
	// Name labels the tenant in attributes, metrics and API paths (default: tenant_id).
	Name     string `mapstructure:"name"`
	TenantID string `mapstructure:"tenant_id"`
	ClientID string `mapstructure:"client_id"`
	// Credentials: exactly one of client_secret, client_certificate_path, workload_identity and
	// managed_identity. With none set, the secret is read from the environment variable
	// O365_SECRET_<TENANT_ID upper-cased, non-alphanumerics as _>.
	ClientSecret configopaque.String `mapstructure:"client_secret"`
	// ClientCertificatePath is a PEM or PKCS#12 file with the certificate and its private key.
	ClientCertificatePath     string              `mapstructure:"client_certificate_path"`
	ClientCertificatePassword configopaque.String `mapstructure:"client_certificate_password"`
	// WorkloadIdentity authenticates with a federated token file (AKS workload identity).
	WorkloadIdentity configoptional.Optional[WorkloadIdentityConfig] `mapstructure:"workload_identity"`
	// ManagedIdentity authenticates as the host's managed identity (client_id: user-assigned).
	ManagedIdentity configoptional.Optional[ManagedIdentityConfig] `mapstructure:"managed_identity"`
	// Cloud: public, usgov, usgovdod or china.
	Cloud string `mapstructure:"cloud"`
	// Datasets to collect, by name; omitted = every dataset enabled by default. A listed dataset is
	// collected unless `enabled: false`, or, for datasets off by default (security_alerts,
	// security_incidents, intune_audit_events, risky_users), unless `enabled: true`.
	Datasets map[string]DatasetConfig `mapstructure:"datasets"`

	_ struct{}
}

// WorkloadIdentityConfig selects the federated token file; empty = $AZURE_FEDERATED_TOKEN_FILE.
type WorkloadIdentityConfig struct {
	TokenFile string `mapstructure:"token_file"`

	_ struct{}
}

// ManagedIdentityConfig selects a user-assigned managed identity by client id; empty = the
// system-assigned one. The tenant's own client_id is then not used.
type ManagedIdentityConfig struct {
	ClientID string `mapstructure:"client_id"`

	_ struct{}
}

// DatasetConfig tunes one dataset of a tenant.
type DatasetConfig struct {
	// Enabled turns a dataset on or off; datasets listed without it use their default.
	Enabled *bool `mapstructure:"enabled"`
	// PollInterval overrides the receiver's poll_interval for this dataset.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// Kinds selects sign-in kinds (signins only): interactive, non_interactive, service_principal,
	// managed_identity; default all four, each with its own cursor.
	Kinds []string `mapstructure:"kinds"`
	// Lookback overrides the receiver's `lookback` for this dataset (event streams only).
	Lookback time.Duration `mapstructure:"lookback"`

	_ struct{}
}

var tenantNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Validate checks the configuration; every message names the offending key.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.PollInterval <= 0 {
		errs = append(errs, errors.New("`poll_interval` must be positive"))
	}
	if cfg.Lookback < 0 {
		errs = append(errs, errors.New("`lookback` must not be negative"))
	}
	if cfg.InitialLookback <= 0 {
		errs = append(errs, errors.New("`initial_lookback` must be positive"))
	}
	if cfg.PageSize < 1 || cfg.PageSize > 1000 {
		errs = append(errs, fmt.Errorf("`page_size` must be between 1 and 1000, got %d", cfg.PageSize))
	}
	if cfg.MaxConcurrentRequests < 1 {
		errs = append(errs, errors.New("`max_concurrent_requests` must be at least 1"))
	}
	if cfg.PollWorkers < 1 {
		errs = append(errs, errors.New("`poll_workers` must be at least 1"))
	}
	if cfg.MaxCooldown <= 0 {
		errs = append(errs, errors.New("`max_cooldown` must be positive"))
	}
	if cfg.ForbiddenRetryInterval <= 0 {
		errs = append(errs, errors.New("`forbidden_retry_interval` must be positive"))
	}
	if cfg.RateLimitMargin < 0 {
		errs = append(errs, errors.New("`rate_limit_margin` must not be negative"))
	}
	if cfg.RateLimitMaxMargin < 0 {
		errs = append(errs, errors.New("`rate_limit_max_margin` must not be negative"))
	}
	if cfg.HTTP.Endpoint != "" {
		errs = append(errs, errors.New("`http.endpoint` is not used; set `graph_endpoint` instead"))
	}
	for _, u := range []struct{ key, value string }{{"graph_endpoint", cfg.GraphEndpoint}, {"authority_host", cfg.AuthorityHost},
		{"management_endpoint", cfg.ManagementEndpoint}} {
		if u.value != "" && !strings.HasPrefix(u.value, "https://") {
			errs = append(errs, fmt.Errorf("`%s` must be an https:// URL, got %q", u.key, u.value))
		}
	}
	if err := validateResource("graph_resource", cfg.GraphResource); err != nil {
		errs = append(errs, err)
	}
	if err := validateResource("management_resource", cfg.ManagementResource); err != nil {
		errs = append(errs, err)
	}
	for family, rl := range cfg.RateLimits {
		if rl.Window <= 0 {
			errs = append(errs, fmt.Errorf("`rate_limits.%s.window` must be positive", family))
		}
		if rl.TenantRequests < 0 || rl.AppRequests < 0 {
			errs = append(errs, fmt.Errorf("`rate_limits.%s` request counts must not be negative", family))
		}
	}
	if len(cfg.Tenants) == 0 {
		errs = append(errs, errors.New("`tenants` must list at least one tenant"))
	}
	names := map[string]int{}
	for i := range cfg.Tenants {
		t := &cfg.Tenants[i]
		key := fmt.Sprintf("tenants[%d]", i)
		if t.TenantID == "" {
			errs = append(errs, fmt.Errorf("`%s.tenant_id` is required", key))
		}
		if t.ClientID == "" && !t.ManagedIdentity.HasValue() {
			errs = append(errs, fmt.Errorf("`%s.client_id` is required", key))
		}
		name := t.label()
		if name != "" && !tenantNamePattern.MatchString(name) {
			errs = append(errs, fmt.Errorf("`%s.name` %q may only contain letters, digits, '.', '_' and '-'", key, name))
		}
		if j, dup := names[name]; dup && name != "" {
			errs = append(errs, fmt.Errorf("`%s.name` %q is already used by tenants[%d]", key, name, j))
		}
		names[name] = i
		if t.Cloud != "" {
			if _, ok := graph.Clouds[t.Cloud]; !ok {
				errs = append(errs, fmt.Errorf("`%s.cloud` must be one of public, usgov, usgovdod, china; got %q", key, t.Cloud))
			}
		}
		errs = append(errs, t.validateCredentials(key)...)
		for ds, dc := range t.Datasets {
			d, ok := catalog.ByName(ds)
			if !ok {
				errs = append(errs, fmt.Errorf("`%s.datasets.%s` is not a dataset; known datasets: %s", key, ds, datasetNames()))
			}
			switch {
			case dc.Lookback < 0:
				errs = append(errs, fmt.Errorf("`%s.datasets.%s.lookback` must not be negative", key, ds))
			case dc.Lookback > 0 && ok && d.Kind == catalog.Snapshot:
				errs = append(errs, fmt.Errorf("`%s.datasets.%s.lookback` applies only to event streams; %s is a snapshot", key, ds, ds))
			}
			if dc.PollInterval < 0 {
				errs = append(errs, fmt.Errorf("`%s.datasets.%s.poll_interval` must not be negative", key, ds))
			}
			if len(dc.Kinds) > 0 && ds != catalog.SignIns.Name {
				errs = append(errs, fmt.Errorf("`%s.datasets.%s.kinds` applies only to signins", key, ds))
			}
			for _, k := range dc.Kinds {
				if _, ok := catalog.SignIns.Source(k); !ok {
					errs = append(errs, fmt.Errorf("`%s.datasets.%s.kinds` has unknown kind %q; known kinds: %s", key, ds, k, signInKindNames()))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// validateResource checks a resource setting (`graph_resource`, `management_resource`): empty, or the
// https URL of a resource (a Graph or Management API host).
func validateResource(key, v string) error {
	if v == "" {
		return nil
	}
	if strings.HasSuffix(v, "/.default") {
		return fmt.Errorf("`%s` names the resource, not the scope: drop the trailing /.default from %q", key, v)
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("`%s` must be the https:// URL of a resource, such as https://graph.microsoft.us; got %q", key, v)
	}
	return nil
}

// validateCredentials checks that exactly one way to authenticate is configured.
func (t *TenantConfig) validateCredentials(key string) []error {
	var set []string
	if t.ClientSecret != "" {
		set = append(set, "client_secret")
	}
	if t.ClientCertificatePath != "" {
		set = append(set, "client_certificate_path")
	}
	if t.WorkloadIdentity.HasValue() {
		set = append(set, "workload_identity")
	}
	if t.ManagedIdentity.HasValue() {
		set = append(set, "managed_identity")
	}
	switch {
	case len(set) > 1:
		return []error{fmt.Errorf("`%s` sets %s: configure exactly one credential", key, strings.Join(set, " and "))}
	case len(set) == 0 && t.TenantID != "" && t.secret() == "":
		return []error{fmt.Errorf("`%s.client_secret` is empty and the environment variable %s is not set (or configure client_certificate_path, workload_identity or managed_identity)", key, secretEnvVar(t.TenantID))}
	case t.ClientCertificatePath != "":
		if _, err := os.Stat(t.ClientCertificatePath); err != nil {
			return []error{fmt.Errorf("`%s.client_certificate_path`: %w", key, err)}
		}
		if err := graph.CheckCertificate(t.ClientCertificatePath, string(t.ClientCertificatePassword)); err != nil {
			return []error{fmt.Errorf("`%s.client_certificate_path`: %w", key, err)}
		}
	}
	return nil
}

// credentialConfig is the azidentity configuration of the tenant.
func (t *TenantConfig) credentialConfig(authority string) graph.CredentialConfig {
	cc := graph.CredentialConfig{TenantID: t.TenantID, ClientID: t.ClientID, AuthorityHost: authority}
	switch {
	case t.ManagedIdentity.HasValue():
		cc.ManagedIdentity = true
		cc.ClientID = t.ManagedIdentity.Get().ClientID
	case t.WorkloadIdentity.HasValue():
		cc.WorkloadIdentity = true
		cc.TokenFile = t.WorkloadIdentity.Get().TokenFile
	case t.ClientCertificatePath != "":
		cc.CertificatePath = t.ClientCertificatePath
		cc.CertificatePassword = string(t.ClientCertificatePassword)
	default:
		cc.ClientSecret = t.secret()
	}
	return cc
}

// appID identifies the app registration whose request budget the tenant uses.
func (t *TenantConfig) appID() string {
	if t.ManagedIdentity.HasValue() {
		if id := t.ManagedIdentity.Get().ClientID; id != "" {
			return id
		}
		return "system-assigned-managed-identity"
	}
	return t.ClientID
}

// label is the tenant's name for attributes and API paths.
func (t *TenantConfig) label() string {
	if t.Name != "" {
		return t.Name
	}
	return t.TenantID
}

// secret is the configured client secret, or the one from the seed's environment variable convention.
func (t *TenantConfig) secret() string {
	if t.ClientSecret != "" {
		return string(t.ClientSecret)
	}
	return os.Getenv(secretEnvVar(t.TenantID))
}

// secretEnvVar is O365_SECRET_ + the tenant id upper-cased with every non-alphanumeric replaced by _.
func secretEnvVar(tenantID string) string {
	var b strings.Builder
	b.WriteString("O365_SECRET_")
	for _, r := range strings.ToUpper(tenantID) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// enabledDatasets lists the datasets the tenant collects, with their effective poll interval.
func (cfg *Config) enabledDatasets(t *TenantConfig) []datasetSettings {
	var out []datasetSettings
	for _, d := range catalog.All() {
		dc, listed := t.Datasets[d.Name]
		if len(t.Datasets) > 0 && !listed {
			continue // an explicit list collects only what it lists
		}
		enabled := d.DefaultEnabled
		if dc.Enabled != nil {
			enabled = *dc.Enabled
		}
		if !enabled {
			continue
		}
		interval := cfg.PollInterval
		if dc.PollInterval > 0 {
			interval = dc.PollInterval
		}
		out = append(out, datasetSettings{dataset: d, pollInterval: interval, lookback: cfg.lookbackFor(d, dc)})
	}
	return out
}

type datasetSettings struct {
	dataset      *dataset
	pollInterval time.Duration
	lookback     time.Duration
}

// lookbackFor is a dataset's effective lookback: its own, else the receiver's, else the catalog's
// default for the dataset.
func (cfg *Config) lookbackFor(d *dataset, dc DatasetConfig) time.Duration {
	switch {
	case dc.Lookback > 0:
		return dc.Lookback
	case cfg.Lookback > 0:
		return cfg.Lookback
	}
	return d.Lookback
}

// cloud is the tenant's cloud (public when unset).
func (t *TenantConfig) cloud() graph.Cloud {
	if c, ok := graph.Clouds[t.Cloud]; ok {
		return c
	}
	return graph.Clouds["public"]
}

// tokenScope is the scope of the tenant's tokens: of its cloud's Graph resource, unless `graph_resource`
// names another.
func (cfg *Config) tokenScope(t *TenantConfig) string {
	if cfg.GraphResource != "" {
		return graph.Scope(cfg.GraphResource)
	}
	return graph.Scope(t.cloud().GraphResource)
}

// management resolves the Management Activity API endpoint and token scope of a tenant: explicit
// settings win over the tenant's cloud; "" when neither names one (China: none documented).
func (cfg *Config) management(t *TenantConfig) (endpoint, scope string) {
	cloud := t.cloud()
	endpoint, resource := cloud.ManagementEndpoint, cloud.ManagementResource
	if cfg.ManagementEndpoint != "" {
		endpoint = cfg.ManagementEndpoint
	}
	if cfg.ManagementResource != "" {
		resource = cfg.ManagementResource
	}
	if endpoint == "" || resource == "" {
		return "", ""
	}
	return strings.TrimRight(endpoint, "/"), graph.Scope(resource)
}

// endpoints resolves the Graph endpoint and authority host of a tenant: explicit settings win over the
// tenant's cloud.
func (cfg *Config) endpoints(t *TenantConfig) (graphEndpoint, authorityHost string) {
	cloud := t.cloud()
	graphEndpoint, authorityHost = cloud.GraphEndpoint, cloud.AuthorityHost
	if cfg.GraphEndpoint != "" {
		graphEndpoint = cfg.GraphEndpoint
	}
	if cfg.AuthorityHost != "" {
		authorityHost = cfg.AuthorityHost
	}
	return strings.TrimRight(graphEndpoint, "/"), authorityHost
}

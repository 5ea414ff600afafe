package o365readinessextension

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
)

// DefaultEndpoint is where the extension listens unless `endpoint` says otherwise: loopback only, next
// to health_check's 13133, so nothing is exposed beyond the host by default.
const DefaultEndpoint = "127.0.0.1:13134"

// Config is the `o365_readiness` extension's configuration.
type Config struct {
	// ServerConfig is the HTTP server: `endpoint`, `tls`, `cors`, `auth` (applies to every route,
	// readiness probes included), timeouts, ... (confighttp).
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	// AdminAuth names the authenticator extension (bearertokenauth, oidc, ...) that admits requests to the
	// admin routes (POST /run, GET /tenants). Without it those routes answer 403: they are never open.
	AdminAuth configoptional.Optional[configauth.Config] `mapstructure:"admin_auth"`
	// ReadinessRequiresAuth puts the read-only routes (readiness, status page, version) behind
	// `admin_auth` too. Off by default so that Kubernetes probes need no credentials.
	ReadinessRequiresAuth bool `mapstructure:"readiness_requires_auth"`
	// Readiness selects what counts towards `ready`.
	Readiness ReadinessConfig `mapstructure:"readiness"`
	// Probe tunes the $top=1 requests that tell whether a dataset's endpoint is reachable.
	Probe ProbeConfig `mapstructure:"probe"`
	// RunRateLimit bounds run-now requests per tenant.
	RunRateLimit RateLimitConfig `mapstructure:"run_rate_limit"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ReadinessConfig selects what counts towards `ready`.
type ReadinessConfig struct {
	// Datasets that count towards a tenant's (and the aggregate) readiness; empty = every dataset the
	// receivers collect. The others are still assessed and reported, with `counts_for_readiness: false`.
	Datasets []string `mapstructure:"datasets"`
	// MaxWatermarkLag makes a dataset not ready when its newest collected record is older than this; 0
	// (the default) only reports the lag. A quiet tenant has a growing lag without anything being wrong,
	// so set it only for datasets that always have traffic (sign-ins of a busy tenant).
	MaxWatermarkLag time.Duration `mapstructure:"max_watermark_lag"`
	// IncludeComponentStatus makes the aggregate readiness fail while any collector component reports a
	// permanent or fatal error (component status, as the health_check extension sees it); recoverable
	// errors are listed as warnings.
	IncludeComponentStatus bool `mapstructure:"include_component_status"`

	_ struct{}
}

// ProbeConfig tunes the $top=1 probes.
type ProbeConfig struct {
	// Interval is how long a probe result is reused: readiness polling costs at most one Graph request
	// per tenant × dataset per interval, and only for datasets whose last poll did not succeed.
	Interval time.Duration `mapstructure:"interval"`
	// Timeout bounds one probe (including waiting for the tenant's Graph request budget).
	Timeout time.Duration `mapstructure:"timeout"`

	_ struct{}
}

// RateLimitConfig is a token bucket: up to Requests at once, refilled at Requests per Per.
type RateLimitConfig struct {
	Requests int           `mapstructure:"requests"`
	Per      time.Duration `mapstructure:"per"`

	_ struct{}
}

// Validate checks the configuration; every message names the offending key.
func (cfg *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(cfg.ServerConfig.NetAddr.Endpoint) == "" {
		errs = append(errs, errors.New("`endpoint` must be set (host:port, e.g. "+DefaultEndpoint+")"))
	}
	if cfg.AdminAuth.HasValue() && cfg.AdminAuth.Get().AuthenticatorID.String() == "" {
		errs = append(errs, errors.New("`admin_auth.authenticator` must name an authenticator extension (e.g. bearertokenauth)"))
	}
	if cfg.ReadinessRequiresAuth && !cfg.AdminAuth.HasValue() {
		errs = append(errs, errors.New("`readiness_requires_auth` is true but `admin_auth` is not configured"))
	}
	seen := map[string]bool{}
	for i, ds := range cfg.Readiness.Datasets {
		switch {
		case strings.TrimSpace(ds) == "":
			errs = append(errs, fmt.Errorf("`readiness.datasets[%d]` must not be empty", i))
		case seen[ds]:
			errs = append(errs, fmt.Errorf("`readiness.datasets[%d]` %q is listed twice", i, ds))
		}
		seen[ds] = true
	}
	if cfg.Readiness.MaxWatermarkLag < 0 {
		errs = append(errs, errors.New("`readiness.max_watermark_lag` must not be negative (0 disables the check)"))
	}
	if cfg.Probe.Interval <= 0 {
		errs = append(errs, errors.New("`probe.interval` must be positive"))
	}
	if cfg.Probe.Timeout <= 0 {
		errs = append(errs, errors.New("`probe.timeout` must be positive"))
	}
	if cfg.RunRateLimit.Requests < 1 {
		errs = append(errs, errors.New("`run_rate_limit.requests` must be at least 1"))
	}
	if cfg.RunRateLimit.Per <= 0 {
		errs = append(errs, errors.New("`run_rate_limit.per` must be positive"))
	}
	return errors.Join(errs...)
}

// counts reports whether a dataset counts towards readiness.
func (r *ReadinessConfig) counts(dataset string) bool {
	if len(r.Datasets) == 0 {
		return true
	}
	for _, d := range r.Datasets {
		if d == dataset {
			return true
		}
	}
	return false
}

package o365mappingprocessor

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
)

// Config is the `o365_mapping` processor's configuration.
type Config struct {
	// KeepRaw keeps the Graph object as the log record body. false drops it once the record is
	// normalized (data minimisation): only the normalized attributes leave the collector.
	KeepRaw bool `mapstructure:"keep_raw"`
	// Pseudonymize replaces user identifiers (user.name, user.id, user.full_name and their fields in a
	// kept body) with a keyed hash, so records of one user stay linkable without naming the user.
	Pseudonymize configoptional.Optional[PseudonymizeConfig] `mapstructure:"pseudonymize"`
	// OCSF adds Open Cybersecurity Schema Framework attributes (ocsf.*) to the records of the datasets
	// that have an OCSF class.
	OCSF bool `mapstructure:"ocsf"`
	// MappingFile replaces the embedded mapping.yml (normalized event type → domain, control, metric).
	MappingFile string `mapstructure:"mapping_file"`
	// CorrelationFile replaces the embedded correlation.yml (incident rules).
	CorrelationFile string `mapstructure:"correlation_file"`
	// Correlation tunes the correlation engine.
	Correlation CorrelationConfig `mapstructure:"correlation"`
	// InternalDomains are the organisation's mail domains (its accepted domains): an inbox rule that
	// forwards to one of them does not forward outside the organisation. The user's own domain and the
	// record's OrganizationName are internal without being listed.
	InternalDomains []string `mapstructure:"internal_domains"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// PseudonymizeConfig configures the keyed hash of user identifiers.
type PseudonymizeConfig struct {
	// Key is the HMAC-SHA256 key. Keep it secret and stable: a new key makes new pseudonyms.
	Key configopaque.String `mapstructure:"key"`

	_ struct{}
}

// CorrelationConfig tunes the correlation engine.
type CorrelationConfig struct {
	// Enabled turns correlation (and IncidentCandidate records) on or off.
	Enabled bool `mapstructure:"enabled"`
	// MaxEntriesPerTenant bounds the events, join rows and suppression marks remembered per tenant
	// (about 200 bytes each). When reached, the least recently updated groups are evicted (counted in
	// otelcol_o365_mapping_correlation_state_evictions).
	MaxEntriesPerTenant int `mapstructure:"max_entries_per_tenant"`

	_ struct{}
}

// minKeyLength is the shortest accepted pseudonymization key, in bytes.
const minKeyLength = 16

// Validate checks the configuration, including the mapping and correlation files; every message names
// the offending key.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Pseudonymize.HasValue() {
		if n := len(cfg.Pseudonymize.Get().Key); n < minKeyLength {
			errs = append(errs, fmt.Errorf("`pseudonymize.key` must be at least %d bytes long, got %d", minKeyLength, n))
		}
	}
	if cfg.Correlation.MaxEntriesPerTenant < 1 {
		errs = append(errs, fmt.Errorf("`correlation.max_entries_per_tenant` must be at least 1, got %d", cfg.Correlation.MaxEntriesPerTenant))
	}
	for i, d := range cfg.InternalDomains {
		if !isDomainName(d) {
			errs = append(errs, fmt.Errorf("`internal_domains[%d]` must be a domain name such as contoso.com (no address, scheme or wildcard), got %q", i, d))
		}
	}
	if _, err := loadMapping(cfg.MappingFile); err != nil {
		errs = append(errs, fmt.Errorf("`mapping_file`: %w", err))
	}
	if cfg.Correlation.Enabled || cfg.CorrelationFile != "" {
		if _, err := loadRules(cfg.CorrelationFile); err != nil {
			errs = append(errs, fmt.Errorf("`correlation_file`: %w", err))
		}
	}
	return errors.Join(errs...)
}

// domainName is a DNS name of at least two labels: letters, digits and inner hyphens, as mail domains are.
var domainName = regexp.MustCompile(`^(?i)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func isDomainName(d string) bool { return len(d) <= 253 && domainName.MatchString(d) }

// internalDomains are the configured domains as the normalizer compares them: lower-case.
func (cfg *Config) internalDomains() []string {
	out := make([]string, 0, len(cfg.InternalDomains))
	for _, d := range cfg.InternalDomains {
		out = append(out, strings.ToLower(d))
	}
	return out
}

package o365mappingprocessor

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	if err := sub.Unmarshal(cfg); err != nil {
		return cfg, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestLoadConfig(t *testing.T) {
	defaults, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, createDefaultConfig(), defaults)
	assert.True(t, defaults.KeepRaw)
	assert.True(t, defaults.Correlation.Enabled)
	assert.Equal(t, 200_000, defaults.Correlation.MaxEntriesPerTenant)

	full, err := loadConfig(t, "full")
	require.NoError(t, err)
	want := createDefaultConfig().(*Config)
	want.KeepRaw = false
	want.OCSF = true
	want.Pseudonymize = configoptional.Some(PseudonymizeConfig{Key: "0123456789abcdef0123456789abcdef"})
	want.MappingFile = "testdata/mapping_custom.yml"
	want.CorrelationFile = "testdata/correlation_custom.yml"
	want.Correlation.MaxEntriesPerTenant = 5000
	want.InternalDomains = []string{"contoso.com", "Contoso.onmicrosoft.com"}
	assert.Equal(t, want, full)

	off, err := loadConfig(t, "no_correlation")
	require.NoError(t, err)
	assert.False(t, off.Correlation.Enabled)
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		errs []string
	}{
		{"short_key", []string{"`pseudonymize.key` must be at least 16 bytes long, got 9"}},
		{"bad_cap", []string{"`correlation.max_entries_per_tenant` must be at least 1, got 0"}},
		{"bad_domains", []string{
			"`internal_domains[1]` must be a domain name such as contoso.com (no address, scheme or wildcard), got \"@fabrikam.com\"",
			"`internal_domains[2]` must be a domain name such as contoso.com (no address, scheme or wildcard), got \"https://tailspin.com\"",
			"`internal_domains[3]` must be a domain name such as contoso.com (no address, scheme or wildcard), got \"*.contoso.com\"",
			"`internal_domains[4]` must be a domain name such as contoso.com (no address, scheme or wildcard), got \"localhost\"",
		}},
		{"missing_mapping", []string{"`mapping_file`: stat testdata/does-not-exist.yml: no such file or directory"}},
		{"bad_mapping", []string{
			"`mapping_file`: testdata/mapping_invalid.yml:4: `mappings.signin.success.domain`: must be a name (letters, digits, '_', '.', ':', '-'), got \"identity access\"",
			"testdata/mapping_invalid.yml:8: `mappings.signin.failure.control`: is required",
			"testdata/mapping_invalid.yml:10: `mappings.signin.failure.colour`: is not a known key (domain, control, metric, description)",
			"testdata/mapping_invalid.yml:11: `mappings.Signin.Bad`: is not an event type (lower-case words joined by '.'), a `prefix.*` pattern or `*`",
			"testdata/mapping_invalid.yml:15: `mappings.signin.success`: is defined twice (first on line 3)",
		}},
		{"bad_correlation", []string{
			"`correlation_file`: testdata/correlation_invalid.yml:1: `version`: must be 1, got \"2\"",
			"testdata/correlation_invalid.yml:3: `rules[0].name`: must be lower-case letters, digits and '_', starting with a letter, got \"Brute-Force\"",
			"testdata/correlation_invalid.yml:4: `rules[0](Brute-Force).severity`: must be low, medium, high or critical, got \"extreme\"",
			"testdata/correlation_invalid.yml:6: `rules[0](Brute-Force).window`: must be a duration such as 15m or 24h, got \"fifteen minutes\"",
			"testdata/correlation_invalid.yml:9: `rules[0](Brute-Force).steps`: must be a list of at least two steps",
			"testdata/correlation_invalid.yml:12: `rules[1](spray).threshold`: is required for rules of type distinct",
			"testdata/correlation_invalid.yml:12: `rules[1](spray).distinct`: is required for rules of type distinct",
			"testdata/correlation_invalid.yml:17: `rules[1](spray).where.o365.event.type.like`: is not an operator (equals, not_equals, in, not_in, exists, prefix, matches)",
			"testdata/correlation_invalid.yml:18: `rules[1](spray).steps`: does not apply to rules of type distinct",
			"testdata/correlation_invalid.yml:19: `rules[2](spray).group_by`: is required for rules of type travel",
			"testdata/correlation_invalid.yml:24: `rules[2](spray).where.user.name.matches`: is not a valid regular expression: error parsing regexp: missing closing ]: `[`",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, tt.name)
			require.Error(t, err)
			for _, want := range tt.errs {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

// TestEmbeddedFilesAreValid keeps the shipped defaults loadable.
func TestEmbeddedFilesAreValid(t *testing.T) {
	m, err := loadMapping("")
	require.NoError(t, err)
	assert.Contains(t, m.patterns(), "signin.failure")
	rules, err := loadRules("")
	require.NoError(t, err)
	var names []string
	for _, r := range rules {
		names = append(names, r.Name)
	}
	assert.Equal(t, []string{"brute_force", "password_spray", "privileged_role_without_mfa",
		"conditional_access_policy_disabled", "impossible_travel", "security_incident_severity_high", "mailbox_forwarding_external",
		"mass_file_download", "anonymous_link_created"}, names)
}

func TestCustomFiles(t *testing.T) {
	m, err := loadMapping("testdata/mapping_custom.yml")
	require.NoError(t, err)
	assert.Equal(t, "failed_logons", m.lookup("signin.failure").Metric)
	assert.Equal(t, "events", m.lookup("anything.else").Metric) // "*"
	rules, err := loadRules("testdata/correlation_custom.yml")
	require.NoError(t, err)
	require.Len(t, rules, 1) // the disabled rule is not loaded
	assert.Equal(t, "many_failures", rules[0].Name)
	assert.Equal(t, 10*60e9, float64(rules[0].Suppression)) // defaults to the window
}

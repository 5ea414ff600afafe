package o365receiver

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// TestCredentialKinds authenticates each way against the simulator's token endpoints and collects.
func TestCredentialKinds(t *testing.T) {
	cert := graphsimtest.NewClientCertificate(t, "otelcol-o365 test")
	const certApp, fedApp, miClient = "cccccccc-0000-4000-8000-000000000001", "cccccccc-0000-4000-8000-000000000002", "cccccccc-0000-4000-8000-000000000003"
	const federated = "eyFederatedServiceAccountTokenFixture" // the simulator matches it literally
	tokenFile := filepath.Join(t.TempDir(), "azure-identity-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(federated), 0o600))

	tenant := graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"directory_audits": {Count: 40, Span: time.Hour}})
	tenant.Apps = append(tenant.Apps,
		graphsim.App{ClientID: certApp, Certificate: string(cert.CertPEM), Roles: graphsimtest.AllRoles},
		graphsim.App{ClientID: fedApp, FederatedToken: federated, Roles: graphsimtest.AllRoles})
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 55, Tenants: []graphsim.Tenant{tenant},
		IdentityHeader: "identity-header-fixture",
		ManagedIdentities: []graphsim.ManagedIdentity{
			{ClientID: miClient, TenantID: graphsimtest.TenantID(1), Roles: graphsimtest.AllRoles},
		}})
	t.Setenv("IDENTITY_ENDPOINT", sim.ManagedIdentityEndpoint())
	t.Setenv("IDENTITY_HEADER", "identity-header-fixture")

	for _, tt := range []struct {
		name string
		set  func(*TenantConfig)
	}{
		{"client_certificate", func(tc *TenantConfig) {
			tc.ClientID, tc.ClientSecret, tc.ClientCertificatePath = certApp, "", cert.Path
		}},
		{"workload_identity", func(tc *TenantConfig) {
			tc.ClientID, tc.ClientSecret = fedApp, ""
			tc.WorkloadIdentity = configoptional.Some(WorkloadIdentityConfig{TokenFile: tokenFile})
		}},
		{"managed_identity", func(tc *TenantConfig) {
			tc.ClientID, tc.ClientSecret = "", ""
			tc.ManagedIdentity = configoptional.Some(ManagedIdentityConfig{ClientID: miClient})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := simConfig(sim, 1)
			cfg.Tenants[0].Datasets = map[string]DatasetConfig{"directory_audits": {}}
			tt.set(&cfg.Tenants[0])
			require.NoError(t, cfg.Validate())
			sink := new(consumertest.LogsSink)
			r := startReceiver(t, cfg, sink)
			require.Eventually(t, func() bool { return sink.LogRecordCount() == 40 }, 30*time.Second, 10*time.Millisecond)
			tok := r.Token("tenant1")
			require.Contains(t, tok.Roles, "AuditLog.Read.All", "the token's roles are read")
			require.Empty(t, tok.LastError)
		})
	}
}

func TestCredentialValidation(t *testing.T) {
	base := func() *Config {
		cfg := createDefaultConfig().(*Config)
		cfg.Tenants = []TenantConfig{{TenantID: "t", ClientID: "c", ClientSecret: "s"}}
		return cfg
	}
	cfg := base()
	cfg.Tenants[0].ManagedIdentity = configoptional.Some(ManagedIdentityConfig{})
	require.ErrorContains(t, cfg.Validate(), "`tenants[0]` sets client_secret and managed_identity: configure exactly one credential")
	cfg = base()
	cfg.Tenants[0].ClientSecret, cfg.Tenants[0].ClientCertificatePath = "", "/does/not/exist.pem"
	require.ErrorContains(t, cfg.Validate(), "`tenants[0].client_certificate_path`: stat /does/not/exist.pem")
	// A file that holds no certificate and key is refused at start-up, not at every token request.
	notACert := filepath.Join(t.TempDir(), "not-a-certificate.pem")
	require.NoError(t, os.WriteFile(notACert, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600))
	cfg.Tenants[0].ClientCertificatePath = notACert
	require.ErrorContains(t, cfg.Validate(), "`tenants[0].client_certificate_path`: parsing the client certificate "+notACert)
	cfg = base()
	cfg.Tenants[0].ClientSecret, cfg.Tenants[0].ClientID = "", ""
	cfg.Tenants[0].ManagedIdentity = configoptional.Some(ManagedIdentityConfig{})
	require.NoError(t, cfg.Validate(), "a system-assigned managed identity needs no client id")
}

// Package graphsimtest starts Graph simulators for tests and benchmarks.
package graphsimtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
)

// ClientID and Secret are the app registration every tenant made by Tenant accepts. The secret is a
// fixture, which tests also search for in logs and output to prove it never leaks.
const (
	ClientID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	Secret   = "sim-Secret~0123456789abcdefghijklmnopqrstuv"
)

// AllRoles are the application permissions of every dataset.
var AllRoles = []string{
	"AuditLog.Read.All", "Directory.Read.All", "RoleManagement.Read.Directory", "Policy.Read.All",
	"SecurityAlert.Read.All", "IdentityRiskEvent.Read.All", "RoleEligibilitySchedule.Read.Directory",
	"SecurityIncident.Read.All", "DeviceManagementApps.Read.All", "IdentityRiskyUser.Read.All",
	// The Management Activity API's (its tokens carry only these).
	"ActivityFeed.Read", "ActivityFeed.ReadDlp",
}

// Scope is the token scope of the public cloud's Graph, the one a default simulator knows.
const Scope = "https://graph.microsoft.com/.default"

// TenantID returns a deterministic tenant id for tenant number n.
func TenantID(n int) string { return fmt.Sprintf("%08d-0000-4000-8000-%012d", n, n) }

// Tenant returns tenant number n with the standard app (all roles) and the given datasets.
func Tenant(n int, datasets map[string]graphsim.DatasetSpec) graphsim.Tenant {
	return graphsim.Tenant{
		ID:       TenantID(n),
		Name:     fmt.Sprintf("tenant%d", n),
		Apps:     []graphsim.App{{ClientID: ClientID, Secret: Secret, Roles: AllRoles}},
		Datasets: datasets,
	}
}

// Sim is a started simulator and the CA file that trusts it.
type Sim struct {
	*graphsim.Server
	CAFile string
}

// Start starts a simulator for the test and stops it at cleanup.
func Start(tb testing.TB, cfg graphsim.Config) *Sim {
	tb.Helper()
	srv, err := graphsim.Start(cfg)
	if err != nil {
		tb.Fatalf("starting the Graph simulator: %v", err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	ca := filepath.Join(tb.TempDir(), "graphsim-ca.pem")
	if err := srv.WriteCACert(ca); err != nil {
		tb.Fatalf("writing the simulator certificate: %v", err)
	}
	return &Sim{Server: srv, CAFile: ca}
}

// ClientCertificate is an app's certificate credential: register CertPEM as graphsim.App.Certificate and
// give Path (the private key and the certificate, PEM) to a client.
type ClientCertificate struct {
	Cert    *x509.Certificate
	Key     *rsa.PrivateKey
	CertPEM string
	// Path is a PEM file holding the private key (PKCS#8) and the certificate.
	Path string
}

// NewClientCertificate makes an RSA 2048 key and a self-signed certificate valid from an hour ago for a
// day, and writes them to a file in the test's temporary directory.
func NewClientCertificate(tb testing.TB, commonName string) ClientCertificate {
	tb.Helper()
	return newClientCertificate(tb, commonName, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// NewExpiredClientCertificate is NewClientCertificate with a certificate that expired an hour ago.
func NewExpiredClientCertificate(tb testing.TB, commonName string) ClientCertificate {
	tb.Helper()
	return newClientCertificate(tb, commonName, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
}

func newClientCertificate(tb testing.TB, commonName string, notBefore, notAfter time.Time) ClientCertificate {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: commonName}, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	path := filepath.Join(tb.TempDir(), "client-certificate.pem")
	if err := os.WriteFile(path, append(keyPEM, certPEM...), 0o600); err != nil {
		tb.Fatal(err)
	}
	return ClientCertificate{Cert: cert, Key: key, CertPEM: string(certPEM), Path: path}
}

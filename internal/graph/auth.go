package graph

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// CredentialConfig is what azidentity needs to authenticate one app registration in one tenant. Exactly
// one way is used: a certificate, workload identity, managed identity, or (the default) a client secret.
type CredentialConfig struct {
	TenantID      string
	ClientID      string
	AuthorityHost string
	// HTTPClient carries the TLS settings for the token endpoint (the same client as for Graph).
	HTTPClient *http.Client

	ClientSecret string
	// CertificatePath is a PEM or PKCS#12 file holding the certificate and its private key.
	CertificatePath     string
	CertificatePassword string
	// WorkloadIdentity uses a federated token (Kubernetes service account token) from TokenFile, or from
	// $AZURE_FEDERATED_TOKEN_FILE when TokenFile is empty.
	WorkloadIdentity bool
	TokenFile        string
	// ManagedIdentity uses the host's managed identity: the user-assigned one with ClientID, or the
	// system-assigned one when ClientID is empty.
	ManagedIdentity bool
}

// NewCredentialFactory returns a factory of azidentity credentials for cfg. Instance discovery is
// disabled for authority hosts that are not Microsoft's own (it would call login.microsoftonline.com
// to validate them).
func NewCredentialFactory(cfg CredentialConfig) CredentialFactory {
	return func() (azcore.TokenCredential, error) {
		opts := azcore.ClientOptions{
			Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: cfg.AuthorityHost},
			// Retries are ours (with the collector's backoff settings); one attempt per call here.
			Retry: policy.RetryOptions{MaxRetries: -1},
		}
		if cfg.HTTPClient != nil {
			opts.Transport = cfg.HTTPClient
		}
		noDiscovery := !isKnownAuthority(cfg.AuthorityHost)
		switch {
		case cfg.ManagedIdentity:
			var id azidentity.ManagedIDKind
			if cfg.ClientID != "" {
				id = azidentity.ClientID(cfg.ClientID)
			}
			return azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts, ID: id})
		case cfg.WorkloadIdentity:
			return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
				ClientOptions: opts, TenantID: cfg.TenantID, ClientID: cfg.ClientID, TokenFilePath: cfg.TokenFile,
				DisableInstanceDiscovery: noDiscovery,
			})
		case cfg.CertificatePath != "":
			raw, err := os.ReadFile(cfg.CertificatePath)
			if err != nil {
				return nil, fmt.Errorf("reading the client certificate: %w", err)
			}
			certs, key, err := azidentity.ParseCertificates(raw, []byte(cfg.CertificatePassword))
			if err != nil {
				return nil, fmt.Errorf("parsing the client certificate %s: %w", cfg.CertificatePath, err)
			}
			return azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ClientID, certs, key,
				&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: noDiscovery})
		default:
			return azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret,
				&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: noDiscovery})
		}
	}
}

// CheckCertificate reads and parses a client certificate file as the credential does (PEM or PKCS#12,
// with its password): a file without a usable certificate and private key is a configuration error,
// reported at start-up rather than at every token request.
func CheckCertificate(path, password string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the client certificate: %w", err)
	}
	if _, _, err := azidentity.ParseCertificates(raw, []byte(password)); err != nil {
		return fmt.Errorf("parsing the client certificate %s: %w", path, err)
	}
	return nil
}

// TokenInfo describes the current access token without revealing it.
type TokenInfo struct {
	ObtainedAt time.Time
	ExpiresOn  time.Time
	// Roles are the application permissions granted to the app, from the token's `roles` claim.
	Roles []string
	// LastError is the last token acquisition failure (AADSTS code and description, no secrets).
	LastError   string
	LastErrorAt time.Time

	fingerprint string // sha256 of the token, to notice a new one without keeping it
}

func fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

func tokenInfoFrom(tok azcore.AccessToken) TokenInfo {
	return TokenInfo{
		ObtainedAt:  time.Now(),
		ExpiresOn:   tok.ExpiresOn,
		Roles:       rolesClaim(tok.Token),
		fingerprint: fingerprint(tok.Token),
	}
}

// rolesClaim reads the `roles` claim of a JWT access token without verifying it: the token came from
// the authority over TLS, and the claim is only reported, never trusted for access decisions.
func rolesClaim(token string) []string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return nil
	}
	return claims.Roles
}

// summarizeAuthError turns an azidentity failure into one line: the AADSTS error and its description
// when the token endpoint answered, the transport error otherwise. Token-endpoint answers never contain
// the secret; the summary leaves out the request form anyway.
func summarizeAuthError(err error) string {
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		raw, _ := io.ReadAll(io.LimitReader(afe.RawResponse.Body, 64<<10))
		if json.Unmarshal(raw, &body) == nil && body.Error != "" {
			desc, _, _ := strings.Cut(body.Description, " Trace ID:")
			return fmt.Sprintf("token endpoint answered HTTP %d %s: %s", afe.RawResponse.StatusCode, body.Error, strings.TrimSpace(desc))
		}
		return fmt.Sprintf("token endpoint answered HTTP %d", afe.RawResponse.StatusCode)
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}

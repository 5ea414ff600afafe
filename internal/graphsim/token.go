package graphsim

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t thumbprints are SHA-1
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// tokenIssuer signs and verifies the simulator's access tokens (RS256 JWTs, as Entra ID issues).
type tokenIssuer struct {
	key *rsa.PrivateKey
	ttl time.Duration

	mu     sync.Mutex
	issued []string // the most recent tokens issued, for tests that search output for them
}

// maxIssuedTokens bounds the tokens kept for IssuedTokens.
const maxIssuedTokens = 10_000

func newTokenIssuer(cloud string, ttl time.Duration) (*tokenIssuer, error) {
	key, err := signingKey(cloud)
	if err != nil {
		return nil, err
	}
	return &tokenIssuer{key: key, ttl: ttl}, nil
}

// signingKeys hold one token signing key per cloud for the whole process: every simulator of a cloud
// signs as that cloud's Entra ID does, so a token one instance issued is valid at another of the same
// cloud — as MSAL's process-wide cache of managed identity tokens assumes — and never at another cloud.
var signingKeys = struct {
	sync.Mutex
	byCloud map[string]*rsa.PrivateKey
}{byCloud: map[string]*rsa.PrivateKey{}}

func signingKey(cloud string) (*rsa.PrivateKey, error) {
	signingKeys.Lock()
	defer signingKeys.Unlock()
	if k := signingKeys.byCloud[cloud]; k != nil {
		return k, nil
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	signingKeys.byCloud[cloud] = k
	return k, nil
}

// accessClaims are the claims of a Graph application token that the simulator checks.
type accessClaims struct {
	TenantID string   `json:"tid"`
	AppID    string   `json:"appid"`
	Roles    []string `json:"roles,omitempty"`
	// Generation is the tenant's revocation generation when the token was issued.
	Generation int `json:"xms_gen"`
	// Audience is a single string in Entra ID access tokens; it shadows RegisteredClaims.Audience, which
	// golang-jwt would render as an array.
	Audience string `json:"aud"`
	jwt.RegisteredClaims
}

func (ti *tokenIssuer) issue(tenantID, appID, audience string, roles []string, generation int, now time.Time) (string, error) {
	claims := accessClaims{
		Generation: generation,
		TenantID:   tenantID,
		AppID:      appID,
		Roles:      roles,
		Audience:   audience,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    "https://sts.windows.net/" + tenantID + "/",
			Subject:   appID,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(ti.ttl)),
			ID:        uuid.NewString(),
		},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(ti.key)
	if err == nil {
		ti.mu.Lock()
		if len(ti.issued) >= maxIssuedTokens {
			ti.issued = ti.issued[len(ti.issued)-maxIssuedTokens/2:]
		}
		ti.issued = append(ti.issued, tok)
		ti.mu.Unlock()
	}
	return tok, err
}

// IssuedTokens returns the access tokens issued so far (the most recent ones; between 5,000 and 10,000
// once that many were issued), so that a test can search a client's logs and output for them.
func (s *Server) IssuedTokens() []string {
	s.tokens.mu.Lock()
	defer s.tokens.mu.Unlock()
	return append([]string(nil), s.tokens.issued...)
}

var errTokenExpired = errors.New("Access token has expired or is not yet valid.") //nolint:staticcheck // Graph's own message

func (ti *tokenIssuer) verify(raw string, now time.Time) (*accessClaims, error) {
	var claims accessClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return &ti.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return now }))
	if errors.Is(err, jwt.ErrTokenExpired) || errors.Is(err, jwt.ErrTokenNotValidYet) {
		return nil, errTokenExpired
	}
	if err != nil {
		return nil, errors.New("Invalid JWT token.") //nolint:staticcheck // Graph's own message
	}
	return &claims, nil
}

// handleOpenIDConfiguration serves /{tenant}/v2.0/.well-known/openid-configuration, which MSAL reads
// (even with instance discovery disabled) to find the token endpoint.
func (s *Server) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	base := s.URL() + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"issuer":                                s.URL() + "/" + tenant + "/v2.0",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"tenant_region_scope":                   "NA",
	})
}

// handleToken implements the OAuth2 client-credentials grant of POST /{tenant}/oauth2/v2.0/token with a
// client secret, a certificate's client assertion or a federated token (see authenticateClient).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.stats.tokenRequests.Add(1)
	if s.tokenOutage.Load() {
		writeJSON(w, http.StatusServiceUnavailable, aadError("temporarily_unavailable", 90033, "A transient error has occurred. Please try again."))
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, aadError("invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."))
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, aadError("unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+gt+"'."))
		return
	}
	tenant := s.tenantByIDOrName(r.PathValue("tenant"))
	if tenant == nil {
		writeJSON(w, http.StatusBadRequest, aadError("invalid_request", 90002, "Tenant '"+r.PathValue("tenant")+"' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."))
		return
	}
	clientID := r.PostForm.Get("client_id")
	app := tenant.app(clientID)
	if app == nil {
		writeJSON(w, http.StatusBadRequest, aadError("unauthorized_client", 700016, "Application with identifier '"+clientID+"' was not found in the directory '"+tenant.cfg.ID+"'."))
		return
	}
	if e := s.authenticateClient(r, tenant, app, now); e != nil {
		writeJSON(w, e.status, aadError(e.code, e.aadsts, e.message))
		return
	}
	// MSAL adds the OIDC scopes (openid profile offline_access); the resource scope is the .default one.
	scope := r.PostForm.Get("scope")
	var resource string
	for _, sc := range strings.Fields(scope) {
		if res, ok := strings.CutSuffix(sc, "/.default"); ok && res != "" {
			resource = res
		}
	}
	if resource == "" {
		writeJSON(w, http.StatusBadRequest, aadError("invalid_scope", 1002012, "The provided value for scope "+scope+" is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."))
		return
	}
	if !s.isGraphResource(resource) && !s.isManagementResource(resource) {
		e := unknownResource(resource, tenant)
		writeJSON(w, e.status, aadError(e.code, e.aadsts, e.message))
		return
	}
	tok, err := s.tokens.issue(tenant.cfg.ID, clientID, resource, s.rolesFor(resource, s.appRoles(tenant.cfg.ID, clientID, app.Roles)), s.tokenGeneration(tenant.cfg.ID), now)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, aadError("server_error", 0, err.Error()))
		return
	}
	s.stats.tokensIssued.Add(1)
	secs := int(s.tokens.ttl / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

// tokenError is an Entra ID error answer of the token endpoint.
type tokenError struct {
	status  int
	code    string
	aadsts  int
	message string
}

func invalidClient(aadsts int, message string) *tokenError {
	return &tokenError{http.StatusUnauthorized, "invalid_client", aadsts, message}
}

func invalidRequest(aadsts int, message string) *tokenError {
	return &tokenError{http.StatusBadRequest, "invalid_request", aadsts, message}
}

const (
	jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// assertionSkew is the clock skew tolerated on an assertion's nbf and exp.
	assertionSkew = 5 * time.Minute
	// maxAssertionLifetime is the longest exp − nbf accepted (what MSAL issues).
	maxAssertionLifetime = 10 * time.Minute
)

// authenticateClient checks the client credential of a token request: a client secret, or a client
// assertion (client_assertion_type jwt-bearer) that is either the app's federated token (workload
// identity; matched as a whole, see App.FederatedToken) or a JWT signed with the app's certificate. A
// certificate assertion is verified as Entra ID does: alg PS256 (x5t#S256) or RS256 (x5t) with the
// thumbprint of the app's certificate, a valid signature by its key, aud = this token endpoint,
// iss = sub = client_id, a jti, and nbf/exp (5 min of skew) spanning at most 10 minutes.
func (s *Server) authenticateClient(r *http.Request, td *tenantData, app *App, now time.Time) *tokenError {
	form := r.PostForm
	secret, assertion, assertionType := form.Get("client_secret"), form.Get("client_assertion"), form.Get("client_assertion_type")
	switch {
	case secret != "" && (assertion != "" || assertionType != ""):
		return invalidRequest(90023, "The request must not carry both 'client_secret' and 'client_assertion'.")
	case assertion != "" || assertionType != "":
		if assertionType != jwtBearer {
			return invalidRequest(90023, "Unsupported client_assertion_type '"+assertionType+"'. Only '"+jwtBearer+"' is supported.")
		}
		if assertion == "" {
			return invalidRequest(900144, "The request body must contain the following parameter: 'client_assertion'.")
		}
		return s.verifyAssertion(r, td, app, assertion, now)
	case secret != "":
		if subtle.ConstantTimeCompare([]byte(secret), []byte(s.appSecret(td, app))) != 1 || s.appSecret(td, app) == "" {
			return invalidClient(7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+app.ClientID+"'.")
		}
		return nil
	default:
		return invalidClient(7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
	}
}

func (s *Server) verifyAssertion(r *http.Request, td *tenantData, app *App, assertion string, now time.Time) *tokenError {
	if app.FederatedToken != "" && subtle.ConstantTimeCompare([]byte(assertion), []byte(app.FederatedToken)) == 1 {
		return nil
	}
	noFederatedMatch := invalidRequest(70021, "No matching federated identity record found for presented assertion.")
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(assertion, claims)
	if err != nil {
		if app.FederatedToken != "" {
			return noFederatedMatch
		}
		return invalidRequest(50027, "JWT token is invalid or malformed.")
	}
	x5t256, _ := tok.Header["x5t#S256"].(string)
	x5t, _ := tok.Header["x5t"].(string)
	if x5t256 == "" && x5t == "" {
		if app.FederatedToken != "" {
			return noFederatedMatch
		}
		return invalidClient(700027, "Client assertion failed signature validation. [Reason - The assertion names no certificate (x5t or x5t#S256).]")
	}
	alg, _ := tok.Header["alg"].(string)
	if alg != "PS256" && alg != "RS256" {
		return invalidRequest(50027, "JWT token is invalid or malformed. Unsupported signing algorithm '"+alg+"'; use PS256 or RS256.")
	}
	cert, _ := parseCertificatePEM(app.Certificate) // validated at Start
	notRegistered := func(thumb string) *tokenError {
		return invalidClient(700027, "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '"+thumb+"', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '"+app.ClientID+"'.]")
	}
	if x5t256 != "" {
		sum := sha256.Sum256(certRaw(cert))
		if got, ok := decodeThumbprint(x5t256); cert == nil || !ok || !bytes.Equal(got, sum[:]) {
			return notRegistered(strings.ToUpper(hex.EncodeToString(got)))
		}
	} else {
		sum := sha1.Sum(certRaw(cert)) //nolint:gosec // x5t is defined as the SHA-1 thumbprint
		if got, ok := decodeThumbprint(x5t); cert == nil || !ok || !bytes.Equal(got, sum[:]) {
			return notRegistered(strings.ToUpper(hex.EncodeToString(got)))
		}
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return invalidClient(700027, fmt.Sprintf("Client assertion contains an invalid signature. [Reason - The key used is expired., Found key 'Start=%s, End=%s']",
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339)))
	}
	if _, err := jwt.NewParser(jwt.WithValidMethods([]string{alg}), jwt.WithoutClaimsValidation()).Parse(assertion,
		func(*jwt.Token) (any, error) { return cert.PublicKey, nil }); err != nil {
		return invalidClient(700027, "Client assertion failed signature validation.")
	}

	audiences, _ := claims.GetAudience()
	if !slices.ContainsFunc(audiences, func(a string) bool { return s.tokenEndpointAudience(r, td, a) }) {
		return invalidClient(50027, "Invalid JWT token. The client assertion's audience claim is not this token endpoint ('"+s.url+"/"+r.PathValue("tenant")+"/oauth2/v2.0/token').")
	}
	iss, _ := claims.GetIssuer()
	sub, _ := claims.GetSubject()
	if iss != app.ClientID {
		return invalidClient(700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .")
	}
	if sub != iss {
		return invalidClient(50048, "Subject mismatches Issuer claim in the client assertion.")
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		return invalidClient(50027, "Invalid JWT token. The client assertion has no 'jti' claim.")
	}
	exp, _ := claims.GetExpirationTime()
	if exp == nil {
		return invalidClient(50027, "Invalid JWT token. The client assertion has no 'exp' claim.")
	}
	start := now
	if nbf, _ := claims.GetNotBefore(); nbf != nil {
		start = nbf.Time
	} else if iat, _ := claims.GetIssuedAt(); iat != nil {
		start = iat.Time
	}
	if now.Add(assertionSkew).Before(start) || now.Add(-assertionSkew).After(exp.Time) || exp.Time.Sub(start) > maxAssertionLifetime {
		return invalidClient(700024, fmt.Sprintf("Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
			now.UTC().Format(time.RFC3339), start.UTC().Format(time.RFC3339), exp.Time.UTC().Format(time.RFC3339)))
	}
	return nil
}

// tokenEndpointAudience reports whether aud names this tenant's token endpoint (v2.0 or v1, by the
// tenant segment of the request, the tenant id or its domain).
func (s *Server) tokenEndpointAudience(r *http.Request, td *tenantData, aud string) bool {
	for _, seg := range []string{r.PathValue("tenant"), td.cfg.ID, td.domain} {
		for _, path := range []string{"/oauth2/v2.0/token", "/oauth2/token"} {
			if strings.EqualFold(strings.TrimRight(aud, "/"), s.url+"/"+seg+path) {
				return true
			}
		}
	}
	return false
}

// decodeThumbprint decodes an x5t / x5t#S256 header: base64url by the JWS spec, standard base64 as MSAL
// writes it; padded or not.
func decodeThumbprint(v string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			return b, true
		}
	}
	return nil, false
}

func certRaw(c *x509.Certificate) []byte {
	if c == nil {
		return nil
	}
	return c.Raw
}

// parseCertificatePEM returns the first certificate of a PEM bundle.
func parseCertificatePEM(s string) (*x509.Certificate, error) {
	rest := []byte(s)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

func aadError(code string, aadsts int, description string) map[string]any {
	now := time.Now().UTC()
	return map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", aadsts, description, uuid.NewString(), uuid.NewString(), now.Format("2006-01-02 15:04:05Z")),
		"error_codes":       []int{aadsts},
		"timestamp":         now.Format("2006-01-02 15:04:05Z"),
		"trace_id":          uuid.NewString(),
		"correlation_id":    uuid.NewString(),
		"error_uri":         "https://login.microsoftonline.com/error?code=" + fmt.Sprint(aadsts),
	}
}

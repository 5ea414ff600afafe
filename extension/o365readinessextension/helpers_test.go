package o365readinessextension

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/otelcol-o365/otelcol-o365/extension/o365readinessextension/internal/metadata"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver"
)

// adminToken is what the test authenticator accepts as "Authorization: Bearer <adminToken>".
const adminToken = "test-admin-token-7f3c"

var testAuthID = component.MustNewID("bearertokenauth")

// bearerAuth is a test-only extensionauth.Server standing in for contrib's bearertokenauth extension
// (which is not a dependency of this module): it admits "Authorization: Bearer <token>" and nothing
// else, and is looked up on the host by id exactly as a real authenticator is.
type bearerAuth struct {
	token string
}

var _ extensionauth.Server = bearerAuth{}

func (bearerAuth) Start(context.Context, component.Host) error { return nil }
func (bearerAuth) Shutdown(context.Context) error              { return nil }

func (a bearerAuth) Authenticate(ctx context.Context, headers map[string][]string) (context.Context, error) {
	for _, v := range headers["Authorization"] {
		if tok, ok := strings.CutPrefix(v, "Bearer "); ok && subtle.ConstantTimeCompare([]byte(tok), []byte(a.token)) == 1 {
			return ctx, nil
		}
	}
	return ctx, errors.New("missing or invalid bearer token")
}

// testHost offers extensions to components.
type testHost struct {
	component.Host
	extensions map[component.ID]component.Component
}

func (h testHost) GetExtensions() map[component.ID]component.Component { return h.extensions }

// withAdminAuth configures admin_auth with the test authenticator.
func withAdminAuth(cfg *Config) {
	cfg.AdminAuth = configoptional.Some(configauth.Config{AuthenticatorID: testAuthID})
}

// startExtension starts the extension on a free loopback port with cfg edited by edits, on a host that
// offers the test authenticator, and shuts it down at cleanup.
func startExtension(t *testing.T, edits ...func(*Config)) (*readinessExtension, *apiClient) {
	t.Helper()
	return startExtensionWithTelemetry(t, nil, edits...)
}

// startExtensionWithTelemetry is startExtension reporting its own telemetry to tel (nil: nowhere).
func startExtensionWithTelemetry(t *testing.T, tel *componenttest.Telemetry, edits ...func(*Config)) (*readinessExtension, *apiClient) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Probe.Interval = time.Hour // one probe per dataset per test: deterministic Graph traffic
	for _, edit := range edits {
		edit(cfg)
	}
	require.NoError(t, cfg.Validate())
	set := extensiontest.NewNopSettings(metadata.Type)
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	if tel != nil {
		set.TelemetrySettings = tel.NewTelemetrySettings()
		set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	set.BuildInfo = component.BuildInfo{Command: "otelcol-o365", Description: "otelcol-o365 test build", Version: "0.0.1-test"}
	ext, err := newExtension(set, cfg)
	require.NoError(t, err)
	host := testHost{Host: componenttest.NewNopHost(), extensions: map[component.ID]component.Component{
		testAuthID: bearerAuth{token: adminToken},
	}}
	require.NoError(t, ext.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return ext, newAPIClient(t, "http://"+ext.addr.String())
}

// simReceiverConfig is an o365 receiver config reading the given simulator tenants: the datasets the
// simulator serves (interactive sign-ins, directory audits), a poll interval of an hour (the first poll
// runs at start; later ones only when a test asks for them through POST /run), no rate limits.
func simReceiverConfig(sim *graphsimtest.Sim, tenants ...int) *o365receiver.Config {
	cfg := o365receiver.NewFactory().CreateDefaultConfig().(*o365receiver.Config)
	cfg.GraphEndpoint = sim.URL()
	cfg.AuthorityHost = sim.URL() + "/"
	cfg.HTTP.TLS.CAFile = sim.CAFile
	cfg.PollInterval = time.Hour
	cfg.InitialLookback = 48 * time.Hour
	cfg.Lookback = 10 * time.Second
	cfg.RateLimits = nil
	cfg.RetryOnFailure.InitialInterval = 10 * time.Millisecond
	cfg.RetryOnFailure.MaxInterval = 100 * time.Millisecond
	for _, n := range tenants {
		cfg.Tenants = append(cfg.Tenants, o365receiver.TenantConfig{
			Name: graphsimtest.Tenant(n, nil).Name, TenantID: graphsimtest.TenantID(n),
			ClientID: graphsimtest.ClientID, ClientSecret: graphsimtest.Secret,
			Datasets: map[string]o365receiver.DatasetConfig{
				"signins":          {Kinds: []string{"interactive"}},
				"directory_audits": {},
			},
		})
	}
	return cfg
}

// startReceiver starts the real o365 receiver on a host whose extensions include exts, so that it
// registers with them, and shuts it down at cleanup.
func startReceiver(t *testing.T, cfg *o365receiver.Config, next consumer.Logs, exts ...*readinessExtension) {
	t.Helper()
	f := o365receiver.NewFactory()
	set := receivertest.NewNopSettings(f.Type())
	set.ID = component.NewID(f.Type()) // "o365", as in a collector configuration
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	rcv, err := f.CreateLogs(context.Background(), set, cfg, next)
	require.NoError(t, err)
	host := testHost{Host: componenttest.NewNopHost(), extensions: map[component.ID]component.Component{}}
	for i, e := range exts {
		host.extensions[component.MustNewIDWithName("o365_readiness", string(rune('a'+i)))] = e
	}
	require.NoError(t, rcv.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
}

// apiClient calls the extension and keeps every response body and header; at the end of the test it
// checks that none of them contains the client secret, any other forbidden string (c.forbid), or a JWT
// (every access token is one, and its base64url header starts with "eyJ").
type apiClient struct {
	t    *testing.T
	base string
	hc   *http.Client

	mu        sync.Mutex
	bodies    [][]byte
	forbidden []string
}

func newAPIClient(t *testing.T, base string) *apiClient {
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
	c := &apiClient{t: t, base: base, hc: hc, forbidden: []string{graphsimtest.Secret, "eyJ"}}
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		c.mu.Lock()
		defer c.mu.Unlock()
		require.NotEmpty(t, c.bodies, "the test read responses")
		for _, f := range c.forbidden {
			for _, b := range c.bodies {
				require.Falsef(t, bytes.Contains(b, []byte(f)), "a response contains %q:\n%s", f, b)
			}
		}
	})
	return c
}

// forbid adds strings that no response may contain.
func (c *apiClient) forbid(s ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forbidden = append(c.forbidden, s...)
}

// record keeps b for the leak check (also used for text obtained otherwise, e.g. Chromium's DOM).
func (c *apiClient) record(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bodies = append(c.bodies, append([]byte(nil), b...))
}

// do sends a request (token "" = no Authorization header) and returns the status, headers and body.
func (c *apiClient) do(method, path, token string) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, http.NoBody)
	require.NoError(c.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	c.record(body)
	for k, vs := range resp.Header {
		for _, v := range vs {
			c.record([]byte(k + ": " + v))
		}
	}
	return resp.StatusCode, resp.Header, body
}

// getJSON GETs path and decodes the JSON answer into v.
func (c *apiClient) getJSON(path, token string, v any) int {
	c.t.Helper()
	status, h, body := c.do(http.MethodGet, path, token)
	require.Contains(c.t, h.Get("Content-Type"), "application/json", "%s: %s", path, body)
	require.NoError(c.t, json.Unmarshal(body, v), "%s: %s", path, body)
	return status
}

// tenantReadiness GETs a tenant's readiness.
func (c *apiClient) tenantReadiness(name string) (int, TenantReadiness) {
	c.t.Helper()
	var tr TenantReadiness
	status := c.getJSON("/tenants/"+name+"/readiness", "", &tr)
	return status, tr
}

// waitTenant polls a tenant's readiness until cond holds, and returns it.
func (c *apiClient) waitTenant(name string, cond func(TenantReadiness) bool) (int, TenantReadiness) {
	c.t.Helper()
	var (
		status int
		tr     TenantReadiness
	)
	require.Eventually(c.t, func() bool {
		status, tr = c.tenantReadiness(name)
		return cond(tr)
	}, 60*time.Second, 25*time.Millisecond, "tenant %s never reached the expected state; last: %s", name, dump(tr))
	return status, tr
}

// polledOnce: every stream of every dataset finished a poll (successful or not), with no poll running.
func polledOnce(tr TenantReadiness) bool {
	if len(tr.Datasets) == 0 {
		return false
	}
	for _, d := range tr.Datasets {
		if len(d.Streams) == 0 {
			return false
		}
		for _, s := range d.Streams {
			if s.LastPollEnd == nil || s.Polling {
				return false
			}
		}
	}
	return true
}

// polledAfter: every stream of the dataset (all datasets when "") finished a poll after t.
func polledAfter(dataset string, after time.Time) func(TenantReadiness) bool {
	return func(tr TenantReadiness) bool {
		for _, d := range tr.Datasets {
			if dataset != "" && d.Name != dataset {
				continue
			}
			for _, s := range d.Streams {
				if s.LastPollEnd == nil || !s.LastPollEnd.After(after) || s.Polling {
					return false
				}
			}
		}
		return true
	}
}

func dataset(t *testing.T, tr TenantReadiness, name string) DatasetReadiness {
	t.Helper()
	for _, d := range tr.Datasets {
		if d.Name == name {
			return d
		}
	}
	require.Failf(t, "dataset missing", "tenant %s has no dataset %s: %s", tr.Tenant, name, dump(tr))
	return DatasetReadiness{}
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// containsAny reports whether some string of list contains sub.
func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

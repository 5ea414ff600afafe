package graphsimtest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Client reads a simulator the way the receiver does: a client-credentials token for the tenant, then
// Graph pages, following every nextLink. For tests that need pages without running a receiver.
type Client struct {
	sim   *Sim
	http  *http.Client
	token string
}

// NewClient obtains a token for tenantID with the standard app.
func NewClient(tb testing.TB, sim *Sim, tenantID string) *Client {
	tb.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(sim.CACertPEM()) {
		tb.Fatal("the simulator's certificate does not parse")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	tb.Cleanup(tr.CloseIdleConnections)
	c := &Client{sim: sim, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	form := url.Values{"client_id": {ClientID}, "client_secret": {Secret},
		"scope": {Scope}, "grant_type": {"client_credentials"}}
	resp, err := c.http.PostForm(sim.URL()+"/"+tenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		tb.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&tok) != nil {
		tb.Fatalf("token request answered %s", resp.Status)
	}
	c.token = tok.AccessToken
	return c
}

// Pages fetches every page of GET /{version}{path}?{query}.
func (c *Client) Pages(tb testing.TB, version, path string, query url.Values) [][]byte {
	tb.Helper()
	link := c.sim.URL() + "/" + version + path + "?" + strings.ReplaceAll(query.Encode(), "+", "%20")
	var out [][]byte
	for link != "" {
		req, err := http.NewRequest(http.MethodGet, link, nil)
		if err != nil {
			tb.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := c.http.Do(req)
		if err != nil {
			tb.Fatalf("GET %s: %v", link, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			tb.Fatalf("GET %s: %s %v: %s", link, resp.Status, err, body)
		}
		out = append(out, body)
		var p struct {
			NextLink string `json:"@odata.nextLink"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			tb.Fatalf("GET %s: %v", link, err)
		}
		link = p.NextLink
	}
	return out
}

// Objects fetches every page of GET /{version}{path}?{query} and returns the objects of their "value".
func (c *Client) Objects(tb testing.TB, version, path string, query url.Values) []json.RawMessage {
	tb.Helper()
	var out []json.RawMessage
	for _, page := range c.Pages(tb, version, path, query) {
		var p struct {
			Value []json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(page, &p); err != nil {
			tb.Fatal(err)
		}
		out = append(out, p.Value...)
	}
	return out
}

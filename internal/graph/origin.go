package graph

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// origin is a URL's scheme, host and port, normalised for comparison: lower case, no trailing dot on the
// host, and the scheme's default port made explicit — so https://Graph.Microsoft.com and
// https://graph.microsoft.com:443 are one origin, and http:// or another port is another.
type origin struct{ scheme, host, port string }

func originOf(raw string) (origin, *url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return origin{}, nil, err
	}
	o := origin{scheme: strings.ToLower(u.Scheme), host: strings.TrimSuffix(strings.ToLower(u.Hostname()), "."), port: u.Port()}
	if o.port == "" {
		switch o.scheme {
		case "https":
			o.port = "443"
		case "http":
			o.port = "80"
		}
	}
	return o, u, nil
}

func (o origin) String() string {
	host := o.host
	if strings.Contains(host, ":") { // IPv6
		host = "[" + host + "]"
	}
	return o.scheme + "://" + host + ":" + o.port
}

// checkOrigin refuses a URL outside the Graph endpoint's origin: the access token is for Graph, and a
// nextLink or a redirect is paging state, never a new place to send it (GRAPH.md "nextLink").
func (c *Client) checkOrigin(raw string) *Error {
	o, u, err := originOf(raw)
	if err == nil && o == c.origin {
		return nil
	}
	host := "(none)"
	if u != nil && u.Host != "" {
		host = u.Host
	}
	return &Error{Kind: KindForeignHost, Message: fmt.Sprintf(
		"refusing to send a request to host %q, which is not the configured endpoint %s (Graph, or the Management Activity API): the access token goes only there", host, c.origin)}
}

// guardRedirects returns a copy of hc that follows no redirect out of the Graph endpoint's origin (the
// Authorization header would go along) and otherwise behaves as hc.
func (c *Client) guardRedirects(hc *http.Client) *http.Client {
	guarded := *hc
	next := hc.CheckRedirect
	guarded.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if ge := c.checkOrigin(req.URL.String()); ge != nil {
			return ge
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return fmt.Errorf("stopped after %d redirects", len(via))
		}
		return nil
	}
	return &guarded
}

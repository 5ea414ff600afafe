package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	"go.opentelemetry.io/collector/config/configretry"
	"go.uber.org/zap"
)

// maxBodyBytes bounds one response body: a 1000-record sign-in page is ~12 MB.
const maxBodyBytes = 64 << 20

// CredentialFactory builds a token credential. The client calls it again to drop a token cache that
// Graph has rejected (a revoked or rotated credential).
type CredentialFactory func() (azcore.TokenCredential, error)

// Hooks let the caller observe requests for its telemetry.
type Hooks struct {
	// OnResponse is called after every HTTP exchange with Graph (status 0 when none completed).
	OnResponse func(dataset string, status int)
	// OnThrottled is called for every 429 (or 503 with Retry-After).
	OnThrottled func(dataset string, retryAfter time.Duration)
}

// ClientSettings configure a Client for one tenant.
type ClientSettings struct {
	HTTPClient *http.Client
	// Endpoint is the Graph endpoint (e.g. https://graph.microsoft.com): requests, and so the access
	// token, go to its origin (scheme, host and port) only.
	Endpoint   string
	Credential CredentialFactory
	// Scope is the token scope: the cloud's Graph resource + "/.default" (see Scope), whatever Endpoint is.
	Scope  string
	Budget *Budget
	Retry  configretry.BackOffConfig
	Logger *zap.Logger
	Hooks  Hooks
}

// Client sends GET requests to Graph for one tenant, and to nowhere else.
type Client struct {
	set    ClientSettings
	origin origin // of set.Endpoint: the only one requests may go to

	credMu sync.Mutex
	cred   azcore.TokenCredential
	token  TokenInfo
}

// Request is one GET: the full URL (a nextLink is used as given), the dataset it serves (for logs and
// telemetry), the budget keys it must acquire and the key a Retry-After pauses.
type Request struct {
	URL        string
	Dataset    string
	BudgetKeys []string
	PauseKey   string
	// OnPause, when set, is called when Graph's Retry-After paused PauseKey, with the end of the pause,
	// before the client waits it out: the caller may keep the pause across a restart.
	OnPause func(until time.Time)
	// Info, when set, receives the status and ids of the response whose body decode accepted, so that a
	// problem found in the page later (a paging loop) can be reported with them.
	Info *ResponseInfo
	// Method is GET when empty; the Management Activity API starts a subscription with a bodiless POST.
	Method string
	// Header, when set, receives the headers of the response whose body decode accepted (the
	// Management Activity API pages with a NextPageUri header, not in the body).
	Header *http.Header
}

// ResponseInfo identifies one Graph response, for logs and errors.
type ResponseInfo struct {
	Status          int
	RequestID       string // Graph's request-id
	ClientRequestID string // the client-request-id we sent
}

// NewClient returns a client for set.Endpoint, which must be an absolute URL; it does no I/O.
func NewClient(set ClientSettings) (*Client, error) {
	if set.Logger == nil {
		set.Logger = zap.NewNop()
	}
	o, _, err := originOf(set.Endpoint)
	if err != nil || o.host == "" {
		return nil, fmt.Errorf("the Graph endpoint %q is not an absolute URL", set.Endpoint)
	}
	c := &Client{set: set, origin: o}
	if c.set.HTTPClient == nil {
		c.set.HTTPClient = http.DefaultClient
	}
	c.set.HTTPClient = c.guardRedirects(c.set.HTTPClient)
	return c, nil
}

// bodyBuffers recycles response buffers: decode copies what it keeps, so a page's bytes are free once
// it returns (a sign-in page is megabytes; allocating it per request dominated the client's garbage).
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Get sends req (a GET unless req.Method says otherwise) and hands a 200 body to decode, retrying what is worth retrying: throttling after
// Retry-After (or backoff when Graph sends none), 5xx, dropped connections and bodies decode rejects
// (truncated or invalid JSON), with exponential backoff and jitter until Retry.MaxElapsedTime. decode
// must start from scratch on every call and must not keep body. A URL outside the Graph endpoint's
// origin fails at once (KindForeignHost), before a token is obtained or a connection made. The returned
// error is an *Error.
func (c *Client) Get(ctx context.Context, req Request, decode func(body []byte) error) error {
	if ge := c.checkOrigin(req.URL); ge != nil {
		c.logFailure(req, ge, "refused")
		return ge
	}
	bo := NewBackOff(c.set.Retry)
	start := time.Now()
	refreshedCredential := false
	for {
		err := c.attempt(ctx, req, decode)
		if err == nil {
			return nil
		}
		var ge *Error
		if !errors.As(err, &ge) {
			return err // context cancelled
		}
		wait := bo.NextBackOff()
		switch ge.Kind {
		case KindThrottled:
			if ge.RetryAfter > 0 {
				wait = ge.RetryAfter
			}
			c.set.Budget.Pause(req.PauseKey, time.Now().Add(wait))
			if until := c.set.Budget.PausedUntil(req.PauseKey); ge.RetryAfter > 0 && req.OnPause != nil && !until.IsZero() {
				req.OnPause(until)
			}
			if c.set.Hooks.OnThrottled != nil {
				c.set.Hooks.OnThrottled(req.Dataset, wait)
			}
		case KindAuth:
			// Graph rejected a token the cache still held (revoked, or a rotated secret): start over
			// with a fresh credential once; after that, report.
			if ge.Status == http.StatusUnauthorized && !refreshedCredential {
				refreshedCredential = true
				c.dropCredential()
				wait = 0
				break
			}
			c.logFailure(req, ge, "giving up")
			return ge
		case KindTransient:
		default:
			c.logFailure(req, ge, "giving up")
			return ge
		}
		if !c.set.Retry.Enabled || (c.set.Retry.MaxElapsedTime > 0 && time.Since(start)+wait > c.set.Retry.MaxElapsedTime) {
			c.logFailure(req, ge, "giving up after retries")
			return ge
		}
		c.logFailure(req, ge, fmt.Sprintf("retrying in %s", wait.Round(time.Millisecond)))
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func (c *Client) attempt(ctx context.Context, req Request, decode func([]byte) error) error {
	clientRequestID := uuid.NewString()
	token, err := c.accessToken(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &Error{Kind: KindAuth, ClientReqID: clientRequestID, Message: "cannot obtain an access token", Err: err}
	}
	// The budget (and any Retry-After pause) is checked last, right before the request is sent: a token
	// request can take a while, and a 429 that arrives meanwhile must hold this request back.
	admitted, err := c.set.Budget.admit(ctx, req.BudgetKeys...)
	if err != nil {
		return err
	}
	// The windows count the request from when it is written, not from its admission.
	sent := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { c.set.Budget.Sent(admitted, req.BudgetKeys...) }}
	hctx := httptrace.WithClientTrace(context.WithValue(ctx, admittedKey{}, admitted), sent)
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	hreq, err := http.NewRequestWithContext(hctx, method, req.URL, http.NoBody)
	if err != nil {
		return &Error{Kind: KindBadRequest, ClientReqID: clientRequestID, Err: err}
	}
	hreq.Header.Set("Authorization", "Bearer "+token)
	hreq.Header.Set("client-request-id", clientRequestID)
	hreq.Header.Set("return-client-request-id", "true")
	hreq.Header.Set("Accept", "application/json")
	// Verbatim data: evolvable enum values newer than the client's schema are sent, not masked.
	hreq.Header.Set("Prefer", "include-unknown-enum-members")

	resp, err := c.set.HTTPClient.Do(hreq)
	if err != nil {
		c.observe(req.Dataset, 0)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ge *Error
		if errors.As(err, &ge) { // a redirect out of the Graph endpoint's origin, not followed
			ge.ClientReqID = clientRequestID
			return ge
		}
		return &Error{Kind: KindTransient, ClientReqID: clientRequestID, Message: "request failed", Err: err}
	}
	defer resp.Body.Close()
	if ra := parseRetryAfter(resp.Header.Get("Retry-After")); ra > 0 &&
		(resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		// Pause the family at once, before even the body is read: requests of other goroutines may be
		// about to pass the budget. (Get pauses again, with the backoff when Graph sent no Retry-After.)
		c.set.Budget.Pause(req.PauseKey, time.Now().Add(ra))
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if m, widened := c.set.Budget.Overrun(req.BudgetKeys...); widened {
			c.set.Logger.Info("Graph answered 429 to a request the budget had room for: the margin of its windows widens",
				zap.String("dataset", req.Dataset), zap.Duration("margin", m))
		}
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer bodyBuffers.Put(buf)
	buf.Reset()
	if resp.ContentLength > 0 && resp.ContentLength <= maxBodyBytes {
		buf.Grow(int(resp.ContentLength))
	}
	_, readErr := buf.ReadFrom(io.LimitReader(resp.Body, maxBodyBytes))
	body := buf.Bytes()
	c.observe(req.Dataset, resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		return responseError(resp, body, clientRequestID)
	}
	requestID := resp.Header.Get("request-id")
	if readErr != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &Error{Kind: KindTransient, Status: resp.StatusCode, RequestID: requestID, ClientReqID: clientRequestID,
			Message: "reading the response body failed", Err: readErr}
	}
	if err := decode(body); err != nil {
		return &Error{Kind: KindTransient, Status: resp.StatusCode, RequestID: requestID, ClientReqID: clientRequestID,
			Message: "invalid page", Err: err}
	}
	if req.Info != nil {
		*req.Info = ResponseInfo{Status: resp.StatusCode, RequestID: requestID, ClientRequestID: clientRequestID}
	}
	if req.Header != nil {
		*req.Header = resp.Header.Clone()
	}
	return nil
}

func (c *Client) observe(dataset string, status int) {
	if c.set.Hooks.OnResponse != nil {
		c.set.Hooks.OnResponse(dataset, status)
	}
}

func (c *Client) logFailure(req Request, ge *Error, action string) {
	fields := []zap.Field{
		zap.String("dataset", req.Dataset),
		zap.String("kind", ge.Kind.String()),
		zap.Int("status", ge.Status),
		zap.String("code", ge.Code),
		zap.String("request_id", ge.RequestID),
		zap.String("client_request_id", ge.ClientReqID),
		zap.String("action", action),
	}
	if ge.RetryAfter > 0 {
		fields = append(fields, zap.Duration("retry_after", ge.RetryAfter))
	}
	if ge.Err != nil {
		fields = append(fields, zap.String("cause", ge.Err.Error()))
	}
	if ge.Kind == KindThrottled {
		c.set.Logger.Info("Graph request throttled", fields...)
		return
	}
	c.set.Logger.Warn("Graph request failed: "+ge.Message, fields...)
}

// NewBackOff is the one translation of `retry_on_failure` into a backoff: intervals, multiplier and
// jitter as configured. Whether and when to give up (`enabled`, `max_elapsed_time`) is the caller's:
// the Graph client honours them, while redelivery to the next consumer never gives up, since the page
// is not committed until it is accepted.
func NewBackOff(r configretry.BackOffConfig) *backoff.ExponentialBackOff {
	bo := backoff.NewExponentialBackOff()
	if r.InitialInterval > 0 {
		bo.InitialInterval = r.InitialInterval
	}
	if r.MaxInterval > 0 {
		bo.MaxInterval = r.MaxInterval
	}
	if r.Multiplier > 0 {
		bo.Multiplier = r.Multiplier
	}
	bo.RandomizationFactor = r.RandomizationFactor
	bo.Reset()
	return bo
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// accessToken returns a token from the credential's cache, which azidentity refreshes before expiry.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.credMu.Lock()
	cred := c.cred
	c.credMu.Unlock()
	if cred == nil {
		var err error
		if cred, err = c.set.Credential(); err != nil {
			return "", err
		}
		c.credMu.Lock()
		c.cred = cred
		c.credMu.Unlock()
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.set.Scope}})
	if err != nil && ctx.Err() != nil {
		return "", ctx.Err() // cancelled, not refused: keep the last real failure on record
	}
	c.credMu.Lock()
	defer c.credMu.Unlock()
	if err != nil {
		c.token.LastError = summarizeAuthError(err)
		c.token.LastErrorAt = time.Now()
		return "", errors.New(c.token.LastError)
	}
	if fingerprint(tok.Token) != c.token.fingerprint {
		c.token = tokenInfoFrom(tok)
	}
	return tok.Token, nil
}

func (c *Client) dropCredential() {
	c.credMu.Lock()
	defer c.credMu.Unlock()
	c.cred = nil
	c.token.fingerprint = ""
}

// Token describes the current access token without revealing it.
func (c *Client) Token() TokenInfo {
	c.credMu.Lock()
	defer c.credMu.Unlock()
	return c.token
}

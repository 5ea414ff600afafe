package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Kind classifies a failed Graph request by what the caller should do about it.
type Kind int

const (
	// KindTransient: 5xx, a dropped connection, a truncated or invalid body. Retry with backoff.
	KindTransient Kind = iota
	// KindThrottled: 429 (or 503 with Retry-After). Wait Retry-After, then retry.
	KindThrottled
	// KindAuth: no token could be obtained, or Graph rejected it. Report; keep retrying slowly.
	KindAuth
	// KindPermission: 403 because an application permission is not granted (admin consent missing).
	KindPermission
	// KindLicence: 403 because the tenant lacks the licence the endpoint needs (Entra ID P1/P2).
	KindLicence
	// KindBadRequest: 4xx caused by the request itself; retrying the same request will not help.
	KindBadRequest
	// KindForeignHost: a link (a nextLink, a redirect) leads out of the configured Graph endpoint's
	// origin. Not sent — the access token goes to Graph only — and not retried.
	KindForeignHost
)

func (k Kind) String() string {
	return [...]string{"transient", "throttled", "auth", "permission", "licence", "bad_request", "foreign_host"}[k]
}

// Error is a failed Graph request with everything an operator needs to quote to Microsoft support.
// It never carries a token or secret.
type Error struct {
	Kind        Kind
	Status      int    // HTTP status, 0 when no response arrived
	Code        string // Graph error code: branch on this, never on Message
	Message     string
	RequestID   string // Graph's request-id
	ClientReqID string // the client-request-id we sent
	RetryAfter  time.Duration
	Err         error // underlying transport, decode or auth error
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Err != nil {
		if msg != "" {
			msg += ": "
		}
		msg += e.Err.Error()
	}
	if e.Status == 0 {
		if e.ClientReqID == "" { // nothing was sent
			return fmt.Sprintf("graph %s error: %s", e.Kind, msg)
		}
		return fmt.Sprintf("graph %s error: %s (client-request-id %s)", e.Kind, msg, e.ClientReqID)
	}
	return fmt.Sprintf("graph %s error: HTTP %d %s: %s (request-id %s, client-request-id %s)",
		e.Kind, e.Status, e.Code, msg, e.RequestID, e.ClientReqID)
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of a Graph error, or KindTransient for anything else.
func KindOf(err error) Kind {
	var ge *Error
	if errors.As(err, &ge) {
		return ge.Kind
	}
	return KindTransient
}

// graphErrorBody is {"error":{"code","message","innerError":{...}}}.
type graphErrorBody struct {
	Error struct {
		Code       string          `json:"code"`
		Message    string          `json:"message"`
		InnerError json.RawMessage `json:"innerError"`
	} `json:"error"`
}

// licenceCodes are the 403 codes Graph uses when the tenant lacks a premium licence.
var licenceCodes = map[string]bool{
	"Authentication_RequestFromNonPremiumTenantOrB2CTenant": true,
	"Authentication_RequestFromUnsupportedUserRole":         false,
}

// responseError classifies a non-2xx response; body is what was read of it.
func responseError(resp *http.Response, body []byte, clientRequestID string) *Error {
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("request-id"), ClientReqID: clientRequestID}
	var b graphErrorBody
	if json.Unmarshal(body, &b) == nil {
		e.Code, e.Message = b.Error.Code, b.Error.Message
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode == http.StatusServiceUnavailable && e.RetryAfter > 0:
		e.Kind = KindThrottled
	case resp.StatusCode >= 500:
		e.Kind = KindTransient
	case resp.StatusCode == http.StatusUnauthorized:
		e.Kind = KindAuth
	case resp.StatusCode == http.StatusForbidden && licenceCodes[e.Code]:
		e.Kind = KindLicence
	case resp.StatusCode == http.StatusForbidden:
		e.Kind = KindPermission
	case resp.StatusCode == http.StatusRequestTimeout:
		e.Kind = KindTransient
	default:
		e.Kind = KindBadRequest
	}
	return e
}

// maxRetryAfter bounds a Retry-After that would otherwise overflow; Graph's are seconds to minutes.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads delta-seconds (possibly fractional, "2.128") or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		// Bounded before the conversion: a float beyond int64 nanoseconds would turn negative.
		return time.Duration(min(secs, maxRetryAfter.Seconds()) * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

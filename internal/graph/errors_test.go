package graph

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestResponseErrorClassification(t *testing.T) {
	body := func(code string) string {
		return `{"error":{"code":"` + code + `","message":"m","innerError":{"date":"2026-11-23T09:30:55","request-id":"r"}}}`
	}
	tests := []struct {
		status     int
		retryAfter string
		body       string
		kind       Kind
		code       string
		wait       time.Duration
	}{
		{429, "2", body("TooManyRequests"), KindThrottled, "TooManyRequests", 2 * time.Second},
		{429, "2.128", body("TooManyRequests"), KindThrottled, "TooManyRequests", 2128 * time.Millisecond},
		{429, "", body("TooManyRequests"), KindThrottled, "TooManyRequests", 0},
		{429, "1e300", body("TooManyRequests"), KindThrottled, "TooManyRequests", maxRetryAfter}, // not an overflow
		{429, "-3", body("TooManyRequests"), KindThrottled, "TooManyRequests", 0},
		{503, "5", body("serviceNotAvailable"), KindThrottled, "serviceNotAvailable", 5 * time.Second},
		{503, "", body("serviceNotAvailable"), KindTransient, "serviceNotAvailable", 0},
		{500, "", "not json", KindTransient, "", 0},
		{504, "", body("gatewayTimeout"), KindTransient, "gatewayTimeout", 0},
		{401, "", body("InvalidAuthenticationToken"), KindAuth, "InvalidAuthenticationToken", 0},
		{403, "", body("Authorization_RequestDenied"), KindPermission, "Authorization_RequestDenied", 0},
		{403, "", body("Authentication_RequestFromNonPremiumTenantOrB2CTenant"), KindLicence, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", 0},
		{400, "", body("BadRequest"), KindBadRequest, "BadRequest", 0},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}
		resp.Header.Set("request-id", "req-1")
		if tt.retryAfter != "" {
			resp.Header.Set("Retry-After", tt.retryAfter)
		}
		e := responseError(resp, []byte(tt.body), "client-1")
		assert.Equal(t, tt.kind, e.Kind, "%d %s", tt.status, tt.body)
		assert.Equal(t, tt.code, e.Code)
		assert.Equal(t, tt.wait, e.RetryAfter)
		assert.Contains(t, e.Error(), "request-id req-1")
		assert.Contains(t, e.Error(), "client-request-id client-1")
	}
}

func TestRolesClaim(t *testing.T) {
	// header.payload.signature with payload {"roles":["AuditLog.Read.All"]}
	tok := "eyJhbGciOiJub25lIn0.eyJyb2xlcyI6WyJBdWRpdExvZy5SZWFkLkFsbCJdfQ.sig"
	assert.Equal(t, []string{"AuditLog.Read.All"}, rolesClaim(tok))
	assert.Nil(t, rolesClaim("not-a-jwt"))
}

package graph

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configretry"
)

// gatedCredential hands out a fixed token, after gate (when set) is closed.
type gatedCredential struct{ gate chan struct{} }

func (c gatedCredential) GetToken(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return azcore.AccessToken{}, ctx.Err()
		}
	}
	return azcore.AccessToken{Token: "token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// testClient is a client of the Graph endpoint at endpoint.
func testClient(t *testing.T, endpoint string, hc *http.Client, budget *Budget, cred gatedCredential) *Client {
	t.Helper()
	retry := configretry.NewDefaultBackOffConfig()
	retry.InitialInterval = 10 * time.Millisecond
	c, err := NewClient(ClientSettings{
		HTTPClient: hc, Endpoint: endpoint, Budget: budget, Retry: retry, Scope: "https://graph/.default",
		Credential: func() (azcore.TokenCredential, error) { return cred, nil },
	})
	require.NoError(t, err)
	return c
}

// A 429's Retry-After pauses the family as soon as the response headers arrive, before its body is read:
// other goroutines' requests may be about to pass the budget.
func TestRetryAfterPausesBeforeTheBodyIsRead(t *testing.T) {
	headersSent, releaseBody := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) > 1 {
			_, _ = w.Write([]byte(`{"value":[]}`))
			return
		}
		w.Header().Set("Retry-After", "0.3")
		w.WriteHeader(http.StatusTooManyRequests)
		w.(http.Flusher).Flush()
		close(headersSent)
		<-releaseBody
		_, _ = w.Write([]byte(`{"error":{"code":"TooManyRequests","message":"Too many requests."}}`))
	}))
	defer srv.Close()
	budget := NewBudget(0)
	c := testClient(t, srv.URL, srv.Client(), budget, gatedCredential{})
	done := make(chan error, 1)
	go func() {
		done <- c.Get(context.Background(), Request{URL: srv.URL, BudgetKeys: []string{"tenant"}, PauseKey: "tenant"},
			func([]byte) error { return nil })
	}()
	<-headersSent
	assert.Eventually(t, func() bool { return !budget.PausedUntil("tenant").IsZero() }, 5*time.Second, time.Millisecond,
		"paused while the 429's body is still on its way")
	close(releaseBody)
	require.NoError(t, <-done)
	assert.Equal(t, int32(2), calls.Load())
}

// The budget admits a request after its token was obtained, right before it is sent: a Retry-After that
// arrives while a token request is under way holds the request back. A transport sees when it was
// admitted (AdmittedAt).
func TestBudgetAdmitsAfterTheToken(t *testing.T) {
	var mu sync.Mutex
	var arrived time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		arrived = time.Now()
		mu.Unlock()
		_, _ = w.Write([]byte(`{"value":[]}`))
	}))
	defer srv.Close()
	var admitted time.Time
	var sawAdmission bool
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		admitted, sawAdmission = AdmittedAt(r.Context())
		return http.DefaultTransport.RoundTrip(r)
	})}
	budget := NewBudget(0)
	gate := make(chan struct{})
	c := testClient(t, srv.URL, hc, budget, gatedCredential{gate: gate})
	done := make(chan error, 1)
	go func() {
		done <- c.Get(context.Background(), Request{URL: srv.URL, BudgetKeys: []string{"tenant"}, PauseKey: "tenant"},
			func([]byte) error { return nil })
	}()
	time.Sleep(50 * time.Millisecond) // the request waits for its token
	until := time.Now().Add(300 * time.Millisecond)
	budget.Pause("tenant", until) // a 429 of another request arrives meanwhile
	close(gate)
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	assert.False(t, arrived.Before(until), "sent at %s, before the pause ended at %s", arrived, until)
	require.True(t, sawAdmission, "the transport sees the admission instant")
	assert.False(t, admitted.Before(until))
	assert.False(t, arrived.Before(admitted))
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

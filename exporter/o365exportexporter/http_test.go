package o365exportexporter

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter/internal/metadatatest"
)

// docServer is an export receiver that de-duplicates by Idempotency-Key, as the IETF draft
// describes: a POST with a key it has already accepted is answered 200 without storing anything again.
type docServer struct {
	*httptest.Server
	mu       sync.Mutex
	script   []int // statuses to answer first (then 200)
	headers  map[string]string
	attempts []attempt
	accepted map[string][]byte // key → body
	latest   map[string][]byte // document id → body of the last accepted version
}

type attempt struct {
	key, documentID, version, contentType string
	body                                  []byte
	status                                int
}

func newDocServer(t *testing.T, script ...int) *docServer {
	s := &docServer{script: script, accepted: map[string][]byte{}, latest: map[string][]byte{}, headers: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		status := http.StatusOK
		if len(s.script) > 0 {
			status, s.script = s.script[0], s.script[1:]
		}
		key := r.Header.Get(HeaderIdempotencyKey)
		s.attempts = append(s.attempts, attempt{key: key, documentID: r.Header.Get(HeaderDocumentID),
			version: r.Header.Get(HeaderExportVersion), contentType: r.Header.Get("Content-Type"), body: body, status: status})
		for k, v := range s.headers {
			w.Header().Set(k, v)
		}
		if status != http.StatusOK {
			http.Error(w, "scripted failure", status)
			return
		}
		if _, dup := s.accepted[key]; !dup {
			s.accepted[key] = body
			s.latest[r.Header.Get(HeaderDocumentID)] = body
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *docServer) snapshot() ([]attempt, map[string][]byte, map[string][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := map[string][]byte{}
	for k, v := range s.accepted {
		acc[k] = v
	}
	lat := map[string][]byte{}
	for k, v := range s.latest {
		lat[k] = v
	}
	return append([]attempt(nil), s.attempts...), acc, lat
}

func httpConfig(t *testing.T, endpoint string, withDirectory bool) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Journal = configoptional.Some(JournalConfig{Path: t.TempDir()})
	if withDirectory {
		cfg = testConfig(t)
	}
	client := confighttp.NewDefaultClientConfig()
	client.Endpoint = endpoint
	client.Timeout = 5 * time.Second
	cfg.HTTP = configoptional.Some(client)
	cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 50 * time.Millisecond
	cfg.RetryConfig.RandomizationFactor = 0
	return cfg
}

func startTestExporter(t *testing.T, cfg *Config) (*exportExporter, *testClock, *componenttest.Telemetry) {
	e, clock, tt := newTestExporter(t, cfg)
	require.NoError(t, e.start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = e.shutdown(context.Background()) })
	return e, clock, tt
}

// TestHTTPRetryAfter500IsIdempotent: the endpoint answers 500, then 200. The document arrives, the
// retry carries the same bytes and the same Idempotency-Key, and the server holds exactly one document.
func TestHTTPRetryAfter500IsIdempotent(t *testing.T) {
	srv := newDocServer(t, http.StatusInternalServerError)
	cfg := httpConfig(t, srv.URL+"/ingest", true)
	e, _, tt := startTestExporter(t, cfg)
	consume(t, e, signin("s1", t0.Add(time.Minute), false), signin("s2", t0.Add(2*time.Minute), true))
	e.flush(context.Background(), t0.Add(2*time.Hour), true)

	require.Eventually(t, func() bool { _, acc, _ := srv.snapshot(); return len(acc) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, e.shutdown(context.Background()))
	attempts, accepted, latest := srv.snapshot()
	require.Len(t, attempts, 2)
	assert.Equal(t, http.StatusInternalServerError, attempts[0].status)
	assert.Equal(t, http.StatusOK, attempts[1].status)
	assert.Equal(t, attempts[0].key, attempts[1].key, "same Idempotency-Key")
	assert.Equal(t, string(attempts[0].body), string(attempts[1].body), "same bytes")
	assert.Equal(t, contoso.id+"/2024-03-13T10:00:00Z/PT1H", attempts[1].documentID)
	assert.Equal(t, "1", attempts[1].version)
	assert.Equal(t, "application/json", attempts[1].contentType)
	assert.Equal(t, IdempotencyKey(attempts[1].documentID, attempts[1].body), attempts[1].key)
	assert.Regexp(t, `^"`+contoso.id+`/2024-03-13T10:00:00Z/PT1H@[0-9a-f]{32}"$`, attempts[1].key)
	require.Len(t, accepted, 1)
	require.Len(t, latest, 1)
	validate(t, attempts[1].body)
	// The POSTed document is the written one.
	onDisk := readTree(t, cfg.Directory.Get().Path)["contoso/20240313T100000Z_PT1H.json"]
	assert.Equal(t, string(onDisk), string(attempts[1].body))

	tenant := attribute.String("tenant", "contoso")
	metadatatest.AssertEqualO365ExportDocumentsPosted(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(tenant)},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualO365ExportDeliveryFailures(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(tenant, attribute.String("destination", "http"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestHTTPUpdatedDocumentReplacesByID: a POST the server accepted but whose answer was lost is sent
// again with the same key (simulated by enqueuing the same document twice) and is a no-op for the
// server; an updated document of the period (a late record) gets a new key and replaces the first by
// document id.
func TestHTTPUpdatedDocumentReplacesByID(t *testing.T) {
	srv := newDocServer(t)
	cfg := httpConfig(t, srv.URL, false)
	e, clock, _ := startTestExporter(t, cfg)
	ctx := context.Background()
	consume(t, e, signin("s1", t0.Add(time.Minute), true))
	clock.Set(t0.Add(time.Hour + defaultFlushDelay))
	e.flush(ctx, clock.Now(), false)
	require.Eventually(t, func() bool { a, _, _ := srv.snapshot(); return len(a) == 1 }, 10*time.Second, 10*time.Millisecond)

	// The same document POSTed again (a retry after a lost answer) is de-duplicated by its key.
	first, _, _ := srv.snapshot()
	require.NoError(t, e.sender.enqueue(ctx, due{key: contoso, start: t0, id: first[0].documentID, body: first[0].body}))
	require.Eventually(t, func() bool { a, _, _ := srv.snapshot(); return len(a) == 2 }, 10*time.Second, 10*time.Millisecond)

	// A late record: a new version, new key, same document id.
	consume(t, e, signin("late", t0.Add(2*time.Minute), false))
	clock.Set(clock.Now().Add(defaultFlushDelay))
	e.flush(ctx, clock.Now(), false)
	require.Eventually(t, func() bool { a, _, _ := srv.snapshot(); return len(a) == 3 }, 10*time.Second, 10*time.Millisecond)
	attempts, accepted, latest := srv.snapshot()
	assert.Equal(t, attempts[0].key, attempts[1].key)
	assert.NotEqual(t, attempts[0].key, attempts[2].key)
	assert.Equal(t, attempts[0].documentID, attempts[2].documentID)
	assert.Len(t, accepted, 2)
	require.Len(t, latest, 1)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(latest[attempts[0].documentID], &doc))
	assert.Equal(t, 2.0, field(doc, "records.total"))
}

// TestHTTPClientErrorIsPermanent: a 4xx answer is not retried (the same bytes cannot succeed); 429
// with Retry-After is.
func TestHTTPClientErrorIsPermanent(t *testing.T) {
	srv := newDocServer(t, http.StatusBadRequest)
	e, _, tt := startTestExporter(t, httpConfig(t, srv.URL, false))
	consume(t, e, signin("s1", t0.Add(time.Minute), true))
	e.flush(context.Background(), t0.Add(2*time.Hour), true)
	require.Eventually(t, func() bool { a, _, _ := srv.snapshot(); return len(a) == 1 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	attempts, accepted, _ := srv.snapshot()
	assert.Len(t, attempts, 1)
	assert.Empty(t, accepted)
	metadatatest.AssertEqualO365ExportDeliveryFailures(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("tenant", "contoso"), attribute.String("destination", "http"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())

	throttled := newDocServer(t, http.StatusTooManyRequests)
	throttled.headers["Retry-After"] = "1"
	e2, _, _ := startTestExporter(t, httpConfig(t, throttled.URL, false))
	consume(t, e2, signin("s1", t0.Add(time.Minute), true))
	e2.flush(context.Background(), t0.Add(2*time.Hour), true)
	require.Eventually(t, func() bool { _, acc, _ := throttled.snapshot(); return len(acc) == 1 }, 10*time.Second, 10*time.Millisecond)
	attempts, _, _ = throttled.snapshot()
	require.Len(t, attempts, 2)
	assert.Equal(t, attempts[0].key, attempts[1].key)
}

// TestHTTPQueueDeliversAtShutdown: documents written at shutdown are still POSTed (the queue drains).
func TestHTTPQueueDeliversAtShutdown(t *testing.T) {
	srv := newDocServer(t)
	e, _, _ := startTestExporter(t, httpConfig(t, srv.URL, false))
	for i := range 5 {
		consume(t, e, signin("s"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Hour), true))
	}
	require.NoError(t, e.shutdown(context.Background()))
	_, accepted, latest := srv.snapshot()
	assert.Len(t, accepted, 5)
	assert.Len(t, latest, 5)
}

func TestIdempotencyKeyQuoting(t *testing.T) {
	assert.Equal(t, `"a\"b\\c_@e3b0c44298fc1c149afbf4c8996fb924"`, IdempotencyKey("a\"b\\c\n", nil))
	k1 := IdempotencyKey("x", []byte("one"))
	assert.Equal(t, k1, IdempotencyKey("x", []byte("one")))
	assert.NotEqual(t, k1, IdempotencyKey("x", []byte("two")))
	assert.NotEqual(t, k1, IdempotencyKey("y", []byte("one")))
}

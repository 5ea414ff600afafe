package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configmiddleware"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension"
	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver"
)

// receiverID is the id every in-process receiver runs as: its storage rows survive a restart.
var receiverID = component.MustNewID("o365")

// receiverConfig reads interactive sign-ins of the given simulator tenants: short poll interval and
// retries, no client-side request budget unless the test sets one.
func receiverConfig(sim *graphsimtest.Sim, tenants ...int) *o365receiver.Config {
	cfg := o365receiver.NewFactory().CreateDefaultConfig().(*o365receiver.Config)
	cfg.GraphEndpoint = sim.URL()
	cfg.AuthorityHost = sim.URL() + "/"
	cfg.HTTP.TLS.CAFile = sim.CAFile
	cfg.PollInterval = 200 * time.Millisecond
	cfg.InitialLookback = 48 * time.Hour
	cfg.Lookback = 10 * time.Minute
	cfg.RateLimits = nil
	cfg.MaxCooldown = 2 * time.Second
	cfg.RetryOnFailure.InitialInterval = 10 * time.Millisecond
	cfg.RetryOnFailure.MaxInterval = 200 * time.Millisecond
	for _, n := range tenants {
		cfg.Tenants = append(cfg.Tenants, o365receiver.TenantConfig{
			Name: fmt.Sprintf("tenant%d", n), TenantID: graphsimtest.TenantID(n), ClientID: graphsimtest.ClientID,
			ClientSecret: configopaque.String(graphsimtest.Secret),
			Datasets:     map[string]o365receiver.DatasetConfig{"signins": {Kinds: []string{"interactive"}}},
		})
	}
	return cfg
}

// host offers extensions to an in-process receiver.
type host struct {
	component.Host
	exts map[component.ID]component.Component
}

func newHost(exts map[component.ID]component.Component) component.Host {
	return host{Host: componenttest.NewNopHost(), exts: exts}
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.exts }

// running is an in-process o365 receiver and the log lines it wrote.
type running struct {
	r       receiver.Logs
	logs    *observer.ObservedLogs
	stopped atomic.Bool
}

// startReceiver runs an o365 receiver (as o365) on h, feeding next; it is shut down at cleanup. Its
// log lines (info and above) are kept for the test and printed if the test fails.
func startReceiver(t testing.TB, cfg *o365receiver.Config, next consumer.Logs, h component.Host) *running {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	set := receivertest.NewNopSettings(o365receiver.NewFactory().Type())
	set.ID = receiverID
	set.Logger = zap.New(core)
	r, err := o365receiver.NewFactory().CreateLogs(context.Background(), set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), h))
	run := &running{r: r, logs: logs}
	t.Cleanup(func() {
		run.stop(t)
		if t.Failed() {
			entries := logs.All()
			if len(entries) > 200 {
				entries = entries[len(entries)-200:]
			}
			for _, e := range entries {
				t.Logf("receiver log: %s %s %v", e.Level, e.Message, e.ContextMap())
			}
		}
	})
	return run
}

func (run *running) stop(t testing.TB) {
	if run.stopped.CompareAndSwap(false, true) {
		require.NoError(t, run.r.Shutdown(context.Background()))
	}
}

// lines returns the log entries whose message contains msg.
func (run *running) lines(msg string) []observer.LoggedEntry {
	return run.logs.FilterMessageSnippet(msg).All()
}

// consumerSink is the next consumer of an in-process receiver: it records each accepted batch in a
// ledger, or refuses while refuse returns an error.
type consumerSink struct {
	ledger   *ledger
	epoch    atomic.Int64
	mu       sync.Mutex
	refuse   func() error
	refusals atomic.Int64
}

func newConsumerSink() *consumerSink { return &consumerSink{ledger: newLedger()} }

func (c *consumerSink) setRefuse(f func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuse = f
}

func (c *consumerSink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	c.mu.Lock()
	refuse := c.refuse
	c.mu.Unlock()
	if refuse != nil {
		if err := refuse(); err != nil {
			c.refusals.Add(1)
			return err
		}
	}
	c.ledger.add(int(c.epoch.Load()), keysOf(ld))
	return nil
}

func (*consumerSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

// --- sql_storage in process -----------------------------------------------------------------------

// storageConfig is sql_storage's default configuration changed by mutate.
func storageConfig(mutate func(*sqlstorageextension.Config)) *sqlstorageextension.Config {
	cfg := sqlstorageextension.NewFactory().CreateDefaultConfig().(*sqlstorageextension.Config)
	mutate(cfg)
	return cfg
}

// startStorage starts a sql_storage extension; it is shut down at cleanup.
func startStorage(t testing.TB, cfg *sqlstorageextension.Config) extension.Extension {
	t.Helper()
	require.NoError(t, cfg.Validate())
	f := sqlstorageextension.NewFactory()
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
	return ext
}

// checkpointReader reads a stream's committed watermark from the storage the receiver commits to (the
// same rows, through a client of its own).
type checkpointReader struct {
	client storage.Client
	key    string
}

func newCheckpointReader(t testing.TB, ext extension.Extension, tenantID, dataset string) *checkpointReader {
	t.Helper()
	c, err := ext.(storage.Extension).GetClient(context.Background(), component.KindReceiver, receiverID, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return &checkpointReader{client: c, key: "o365/" + tenantID + "/" + dataset + "/state"}
}

// watermark is the committed watermark (zero before the first commit).
func (c *checkpointReader) watermark() (time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := c.client.Get(ctx, c.key)
	if err != nil || raw == nil {
		return time.Time{}, err
	}
	var st struct {
		Watermark time.Time `json:"watermark"`
	}
	err = json.Unmarshal(raw, &st)
	return st.Watermark, err
}

// --- HTTP tap -------------------------------------------------------------------------------------

// tap is an HTTP client middleware extension (`http.middlewares: [tap]`) that timestamps every request
// the receiver sends, by client-request-id — when the client's budget admitted it, when the transport
// was handed it, when its response came back and when the client had handled that response — to tell
// requests sent after a 429 was handled from those already under way.
type tap struct {
	component.StartFunc
	component.ShutdownFunc

	mu        sync.Mutex
	exchanges map[string]*exchange
}

type exchange struct {
	// Admitted: the client's request budget admitted the request (graph.AdmittedAt, read under the
	// budget's lock). Sent: the transport was handed the request. Received: its response headers came
	// back. Done: the client closed the response body, having read and handled the response.
	Admitted, Sent, Received time.Time
	done                     atomic.Int64 // unix nanoseconds
	Status                   int
	Path                     string
}

func (x *exchange) Done() time.Time {
	if n := x.done.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

func (x *exchange) String() string {
	return fmt.Sprintf("{%s admitted %s sent %s received %s done %s status %d}", x.Path, x.Admitted.Format("15:04:05.000000"), x.Sent.Format("15:04:05.000000"),
		x.Received.Format("15:04:05.000000"), x.Done().Format("15:04:05.000000"), x.Status)
}

// closeRecorder notes when the client closes a response body.
type closeRecorder struct {
	io.ReadCloser
	x *exchange
}

func (c closeRecorder) Close() error {
	c.x.done.CompareAndSwap(0, time.Now().UnixNano())
	return c.ReadCloser.Close()
}

var tapID = component.MustNewID("tap")

func newTap() *tap { return &tap{exchanges: map[string]*exchange{}} }

var _ extensionmiddleware.HTTPClient = (*tap)(nil)

func (tp *tap) GetHTTPRoundTripper(context.Context) (extensionmiddleware.WrapHTTPRoundTripperFunc, error) {
	return func(_ context.Context, next http.RoundTripper) (http.RoundTripper, error) {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			id := req.Header.Get("client-request-id")
			x := &exchange{Sent: time.Now(), Path: req.URL.Path}
			x.Admitted, _ = graph.AdmittedAt(req.Context())
			resp, err := next.RoundTrip(req)
			x.Received = time.Now()
			if resp != nil {
				x.Status = resp.StatusCode
				resp.Body = closeRecorder{ReadCloser: resp.Body, x: x}
			}
			if id != "" {
				tp.mu.Lock()
				tp.exchanges[id] = x
				tp.mu.Unlock()
			}
			return resp, err
		}), nil
	}, nil
}

func (tp *tap) get(clientRequestID string) *exchange {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.exchanges[clientRequestID]
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// useTap makes cfg's HTTP client go through the tap extension.
func useTap(cfg *o365receiver.Config) {
	cfg.HTTP.Middlewares = append(cfg.HTTP.Middlewares, configmiddleware.Config{ID: tapID})
}

// fieldString is a log entry's field rendered as a string.
func fieldString(e observer.LoggedEntry, key string) string {
	v, ok := e.ContextMap()[key]
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

// hasFields reports whether the log entry carries every key with a non-empty value.
func hasFields(e observer.LoggedEntry, keys ...string) bool {
	for _, k := range keys {
		if v := fieldString(e, k); v == "" || v == "0" && k != "status" {
			return false
		}
	}
	return true
}

func entryText(e observer.LoggedEntry) string {
	var b strings.Builder
	b.WriteString(e.Message)
	for k, v := range e.ContextMap() {
		fmt.Fprintf(&b, " %s=%v", k, v)
	}
	return b.String()
}

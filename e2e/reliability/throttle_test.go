package reliability

import (
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver"
)

// throttleFaults answer 50 % of Graph requests with 429, Retry-After 1, 2, 3, 4 or 5 s (10 % each). The
// simulator draws each rule in turn, so the rules' probabilities are conditional on the earlier ones not
// firing: 0.1, 0.1/0.9, 0.1/0.8, 0.1/0.7, 0.1/0.6.
func throttleFaults() []graphsim.Fault {
	var out []graphsim.Fault
	rest := 1.0
	for s := 1; s <= 5; s++ {
		out = append(out, graphsim.Fault{Kind: "status", Status: http.StatusTooManyRequests, RetryAfter: time.Duration(s) * time.Second, Probability: 0.1 / rest})
		rest -= 0.1
	}
	return out
}

// Scenario 2, throttling storm: half of all Graph calls answer 429 with Retry-After between 1 and 5 s,
// while the receiver backfills three streams of two tenants (two streams share tenant 1's "reports"
// family, so a 429 on one pauses both) with up to 6 requests in flight per stream.
//
// Method: the simulator marks a request as a violation when it arrives before a Retry-After it gave that
// tenant's family has elapsed (Stats().Violations) — including requests that were already under way
// when the 429 was sent, which no client can call back. To make the check honest, an HTTP client
// middleware (tap) records for each request the instant the client's request budget admitted it (read
// under the budget's lock: graph.AdmittedAt) and, for each response, the instant the client had handled
// it (closed its body; the client pauses the tenant's family as soon as a 429's headers arrive, before
// it reads the body). A request arriving inside another request's Retry-After is a violation only if
// the client admitted it after it had handled that 429 — then the pause was in place when the budget
// let it through; the others were under way (admitted, or on the wire) when the 429 came. Both counts
// are reported; the honest one must be 0. The run must complete exactly once (the simulator's ids).
func TestThrottlingStorm(t *testing.T) {
	n := pick(1, 10)
	specs := map[int]map[string]graphsim.DatasetSpec{
		1: {"signins": {Count: 1000 * n, Span: 6 * time.Hour, PerTimestamp: 2}, "directory_audits": {Count: 500 * n, Span: 6 * time.Hour}},
		2: {"signins": {Count: 1000 * n, Span: 6 * time.Hour}},
	}
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 92, Faults: throttleFaults(), Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, specs[1]), graphsimtest.Tenant(2, specs[2]),
	}})
	from, to := sim.Anchor().Add(-7*time.Hour), sim.Anchor()
	want := append(truth("signins", sim.IDs(graphsimtest.TenantID(1), "signins", from, to), sim.IDs(graphsimtest.TenantID(2), "signins", from, to)),
		truth("directory_audits", sim.IDs(graphsimtest.TenantID(1), "directory_audits", from, to))...)

	cfg := receiverConfig(sim, 1, 2)
	cfg.PageSize = 200
	cfg.Tenants[0].Datasets["directory_audits"] = o365receiver.DatasetConfig{}
	tp := newTap()
	useTap(cfg)
	sink := newConsumerSink()
	start := time.Now()
	run := startReceiver(t, cfg, sink, newHost(map[component.ID]component.Component{tapID: tp}))
	sink.ledger.waitUnique(t, len(want), pick(4*time.Minute, 30*time.Minute))
	took := time.Since(start)
	time.Sleep(time.Second) // more polls, still throttled: nothing else may arrive
	run.stop(t)
	res := sink.ledger.exactlyOnce(t, want)

	c := checkRetryAfter(sim.Requests(), tp)
	st := sim.Stats()
	t.Logf("%d Graph requests, %d answered 429; %d arrived inside a Retry-After (the simulator counted %d): %d in flight when the client handled that 429, %d admitted before but sent after, %d admitted after it: %v",
		c.requests, c.throttled, c.inside, st.Violations, c.inFlight, c.late, c.honest, c.examples)
	assert.Zero(t, c.honest, "requests sent after a 429 came back, before its Retry-After elapsed: %v", c.examples)
	assert.InDelta(t, 0.5, float64(c.throttled)/float64(c.requests), 0.25, "about half the calls were throttled")

	throttled := run.lines("Graph request throttled")
	require.NotEmpty(t, throttled, "throttling is logged")
	for _, e := range throttled {
		require.True(t, hasFields(e, "status", "code", "request_id", "client_request_id", "retry_after", "dataset"), "%s", entryText(e))
		require.Equal(t, "429", fieldString(e, "status"))
	}
	report(t, row{Scenario: "2 throttling storm (50 % 429, Retry-After 1-5 s)", Runs: 1, Lost: res.lost, Duplicated: res.duplicated, Violations: c.honest,
		Note: fmt.Sprintf("%d records; %d requests, %d throttled; simulator counted %d early arrivals (by arrival time %d: %d in flight, %d admitted before the 429 was handled); %s",
			len(want), c.requests, c.throttled, st.Violations, c.inside, c.inFlight, c.late, took.Round(time.Second))})
}

type retryAfterCheck struct {
	requests, throttled int
	// inside: requests arriving inside a Retry-After given to their tenant's family (by arrival times).
	// Of those, inFlight: handed to the transport before the client had handled that 429; late: admitted
	// by the budget before, but handed to the transport after (a goroutine stalled in between);
	// honest: admitted after the client had handled it — a violation.
	inside, inFlight, late, honest int
	examples                       []string
}

func checkRetryAfter(reqs []graphsim.RequestRecord, tp *tap) retryAfterCheck {
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].At.Before(reqs[j].At) })
	var c retryAfterCheck
	var waits []graphsim.RequestRecord // 429s with a Retry-After
	for _, b := range reqs {
		c.requests++
		var covering []graphsim.RequestRecord
		for _, a := range waits {
			if a.TenantID == b.TenantID && a.Family == b.Family && b.At.Before(a.At.Add(a.RetryAfter)) {
				covering = append(covering, a)
			}
		}
		if len(covering) > 0 {
			c.inside++
			honest, late := false, false
			xb := tp.get(b.ClientRequestID)
			for _, a := range covering {
				xa := tp.get(a.ClientRequestID)
				switch {
				case xa == nil || xb == nil || xa.Done().IsZero() || xb.Admitted.IsZero() || xb.Admitted.After(xa.Done()):
					honest = true
					if len(c.examples) < 5 {
						c.examples = append(c.examples, fmt.Sprintf("%s at %s inside the %s Retry-After of %s at %s (tap: %v, %v)",
							b.ClientRequestID, b.At.Format("15:04:05.000000"), a.RetryAfter, a.ClientRequestID, a.At.Format("15:04:05.000000"), xa, xb))
					}
				case xb.Sent.After(xa.Done()):
					late = true
				}
			}
			switch {
			case honest:
				c.honest++
			case late:
				c.late++
			default:
				c.inFlight++
			}
		}
		if b.Status == http.StatusTooManyRequests {
			c.throttled++
			if b.RetryAfter > 0 {
				waits = append(waits, b)
			}
		}
	}
	return c
}

package reliability

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// Scenario 3, server faults. For each fault kind, the receiver backfills sign-ins (100-record pages, so
// the window is read in concurrent spans and nextLinks) from a simulator that answers the first request
// and its retry with the fault (scripted: the fault is certainly met), and 10 % of all later requests
// with it (seeded: met anywhere in the run). Checked for each kind:
//   - the log line: a warning naming the failure with tenant, dataset, HTTP status, Graph's error code
//     (5xx), Graph's request-id and our client-request-id (an empty page with a nextLink is normal Graph
//     paging, not a failure: no warning for it);
//   - position kept: a failed request is retried in place and a failed poll resumes from the committed
//     watermark (lookback 1 s over hours of history), so the simulator serves at most the ground truth,
//     plus the pages fetched ahead by each failed poll (failed polls × (max_concurrent_requests + 3) ×
//     page_size), plus one page per fault (a damaged page fetched again, a page repeated through a
//     looping nextLink) — never the window again from its start;
//   - exactly once: the consumer receives every id of the ground truth once.
func TestServerFaults(t *testing.T) {
	type expect struct {
		message string // the warning's message contains this
		status  int
		code    string // Graph's error code, when the answer has one
		cause   string // the cause or error contains this
		noLog   bool   // no warning at all: not a failure
	}
	cases := []struct {
		name   string
		faults []graphsim.Fault // scripted, in order
		random graphsim.Fault
		expect expect
	}{
		{"500", []graphsim.Fault{{Kind: "status", Status: 500}, {Kind: "status", Status: 500}}, graphsim.Fault{Kind: "status", Status: 500},
			expect{message: "Graph request failed", status: 500, code: "generalException"}},
		{"503", []graphsim.Fault{{Kind: "status", Status: 503}, {Kind: "status", Status: 503}}, graphsim.Fault{Kind: "status", Status: 503},
			expect{message: "Graph request failed", status: 503, code: "serviceNotAvailable"}},
		{"504", []graphsim.Fault{{Kind: "status", Status: 504}, {Kind: "status", Status: 504}}, graphsim.Fault{Kind: "status", Status: 504},
			expect{message: "Graph request failed", status: 504, code: "gatewayTimeout"}},
		{"connection reset", []graphsim.Fault{{Kind: "reset"}, {Kind: "reset"}}, graphsim.Fault{Kind: "reset"},
			// Over HTTP/2 the drop is a stream reset (INTERNAL_ERROR), over HTTP/1.1 an unexpected EOF.
			expect{message: "Graph request failed: reading the response body failed", status: 200}},
		{"truncated JSON", []graphsim.Fault{{Kind: "truncate"}, {Kind: "truncate"}}, graphsim.Fault{Kind: "truncate"},
			expect{message: "Graph request failed: invalid page", status: 200, cause: "invalid page"}},
		{"invalid JSON", []graphsim.Fault{{Kind: "invalid_json"}, {Kind: "invalid_json"}}, graphsim.Fault{Kind: "invalid_json"},
			expect{message: "Graph request failed: invalid page", status: 200, cause: "invalid page"}},
		{"page without value", []graphsim.Fault{{Kind: "no_value"}, {Kind: "no_value"}}, graphsim.Fault{Kind: "no_value"},
			expect{message: "Graph request failed: invalid page", status: 200, cause: `page has no "value" array`}},
		{"empty page with nextLink", []graphsim.Fault{{Kind: "empty_next"}, {Kind: "empty_next"}}, graphsim.Fault{Kind: "empty_next"},
			expect{noLog: true}},
		// The first request's page is full, so the receiver splits the rest of the window by time and
		// does not follow its nextLink; after an empty page it follows nextLinks, and meets the loop.
		{"nextLink loop", []graphsim.Fault{{Kind: "empty_next"}, {Kind: "next_loop"}}, graphsim.Fault{Kind: "next_loop"},
			expect{message: "Poll failed", status: 200, cause: "a paging loop"}},
	}
	records := pick(1200, 12000)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			random := c.random
			random.Probability = 0.1
			sim := graphsimtest.Start(t, graphsim.Config{Seed: 93 + uint64(i), Faults: []graphsim.Fault{random}, Tenants: []graphsim.Tenant{
				graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: records, Span: 6 * time.Hour, PerTimestamp: 2}}),
			}})
			sim.FailNext(c.faults...)
			want := truth("signins", sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-7*time.Hour), sim.Anchor()))
			cfg := receiverConfig(sim, 1)
			cfg.PageSize = 100
			cfg.Lookback = time.Second
			sink := newConsumerSink()
			run := startReceiver(t, cfg, sink, newHost(nil))
			sink.ledger.waitUnique(t, len(want), pick(2*time.Minute, 10*time.Minute))
			time.Sleep(time.Second) // more polls (still faulty): nothing else may arrive
			run.stop(t)
			res := sink.ledger.exactlyOnce(t, want)

			st := sim.Stats()
			require.GreaterOrEqual(t, st.Faults, int64(len(c.faults)), "the scripted faults were served")
			violations := 0
			failures := append(run.lines("Graph request failed"), run.lines("Poll failed")...)
			if c.expect.noLog {
				assert.Empty(t, failures, "an empty page with a nextLink is not a failure: %v", texts(failures))
			} else {
				matching := 0
				for _, e := range failures {
					if !strings.Contains(e.Message, c.expect.message) {
						continue
					}
					text := entryText(e)
					ok := fieldString(e, "tenant") == "tenant1" && hasFields(e, "dataset", "request_id", "client_request_id") &&
						fieldString(e, "status") == fmt.Sprint(c.expect.status) && strings.Contains(text, c.expect.cause) &&
						(c.expect.code == "" || fieldString(e, "code") == c.expect.code)
					if assert.True(t, ok, "the failure line names tenant, dataset, status %d, code %q, request ids and %q: %s",
						c.expect.status, c.expect.code, c.expect.cause, text) {
						matching++
					} else {
						violations++
					}
				}
				if !assert.Positive(t, matching, "a %q warning: got %v", c.expect.message, texts(failures)) {
					violations++
				}
			}

			served := 0
			for _, r := range sim.Requests() {
				if r.Status == http.StatusOK {
					served += r.Records
				}
			}
			failedPolls := len(run.lines("Poll failed"))
			bound := len(want) + (failedPolls+1)*(cfg.MaxConcurrentRequests+3)*cfg.PageSize + int(st.Faults)*cfg.PageSize
			if !assert.LessOrEqual(t, served, bound, "records served: the position is kept across %d failed polls", failedPolls) {
				violations++
			}
			t.Logf("%d records; %d faults served in %d requests; %d failed polls; %d records served (%d re-read)",
				len(want), st.Faults, st.GraphRequests, failedPolls, served, served-len(want))
			report(t, row{Scenario: "3 server fault: " + c.name, Runs: 1, Lost: res.lost, Duplicated: res.duplicated, Violations: violations,
				Note: fmt.Sprintf("%d records; %d faults in %d requests; %d failed polls; %d records re-read", len(want), st.Faults, st.GraphRequests, failedPolls, served-len(want))})
		})
	}
}

func texts(entries []observer.LoggedEntry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, entryText(e))
	}
	return out
}

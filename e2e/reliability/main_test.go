// Package reliability is otelcol-o365's reliability and security suite (issue 9): crash, throttling,
// server, auth, back-pressure, storage, configuration and secret-leak scenarios, each against the Graph
// simulator with a known ground truth (the exact record ids the simulator holds). Scenarios about the
// process (kill -9, bad configuration, a full run's secrets, a secret rotated under a running collector)
// run the ocb-built distribution; the others run the o365 receiver in this process, where the test
// controls the consumer, the storage and the HTTP transport.
//
// `go test` (and `make test`) runs the short forms. O365_SOAK=1 (`make soak`) runs the long forms. Every
// scenario records one row (scenario, runs, lost, duplicated, violations) that TestMain prints as a table
// at the end (visible with -v) and appends, tab-separated, to $O365_RELIABILITY_REPORT when set; `make
// soak` prints that file with the fuzzing rows added (scripts/soak.sh).
package reliability

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
)

// soak reports whether the long forms run (O365_SOAK=1).
func soak() bool { return os.Getenv("O365_SOAK") == "1" }

// pick is short in `make test`, long in `make soak`.
func pick[T any](short, long T) T {
	if soak() {
		return long
	}
	return short
}

// row is one line of the summary table.
type row struct {
	Scenario string
	// Runs: collector processes started (crash), receiver runs, configs tried, fuzz executions, ...
	Runs int
	// Lost: ground-truth ids never delivered. Duplicated: deliveries beyond the first of an id.
	Lost, Duplicated int
	// Violations of the scenario's own invariant (see docs/reliability.md): requests before Retry-After,
	// watermark advances while the consumer or storage refused, duplicates outside the pages in flight
	// at a kill, configs accepted, panics, secrets found.
	Violations int
	Note       string
}

var table struct {
	sync.Mutex
	rows []row
}

// report adds a row to the summary table.
func report(t testing.TB, r row) {
	t.Helper()
	t.Logf("RESULT %s: runs=%d lost=%d duplicated=%d violations=%d %s", r.Scenario, r.Runs, r.Lost, r.Duplicated, r.Violations, r.Note)
	table.Lock()
	defer table.Unlock()
	table.rows = append(table.rows, r)
}

func TestMain(m *testing.M) {
	code := m.Run()
	table.Lock()
	rows := table.rows
	table.Unlock()
	if len(rows) > 0 {
		mode := "short forms (make test)"
		if soak() {
			mode = "long forms (O365_SOAK=1, make soak)"
		}
		fmt.Printf("\nReliability summary, %s:\n", mode)
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "scenario\truns\tlost\tduplicated\tviolations\tnote")
		for _, r := range rows {
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%s\n", r.Scenario, r.Runs, r.Lost, r.Duplicated, r.Violations, r.Note)
		}
		_ = w.Flush()
		if path := os.Getenv("O365_RELIABILITY_REPORT"); path != "" {
			var b strings.Builder
			for _, r := range rows {
				fmt.Fprintf(&b, "%s\t%d\t%d\t%d\t%d\t%s\n", r.Scenario, r.Runs, r.Lost, r.Duplicated, r.Violations,
					strings.ReplaceAll(r.Note, "\t", " "))
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err == nil {
				_, err = f.WriteString(b.String())
				_ = f.Close()
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "writing %s: %v\n", path, err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

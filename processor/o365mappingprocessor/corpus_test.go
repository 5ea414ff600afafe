package o365mappingprocessor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver"
)

// corpusDir finds the folder of real Graph objects (Microsoft's documentation examples and other
// projects' fixtures, one dataset per folder; see its SOURCES.md): $O365_GRAPH_CORPUS, or the nearest
// shared/graph-corpus above the package, so that a checkout in a worktree (wt/<name>) finds it too.
func corpusDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("O365_GRAPH_CORPUS"); dir != "" {
		return dir
	}
	dir, err := filepath.Abs(".")
	require.NoError(t, err)
	for {
		c := filepath.Join(dir, "shared", "graph-corpus")
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			return c
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return filepath.Join("..", "..", "..", "shared", "graph-corpus")
		}
		dir = parent
	}
}

// corpusObject is one file of the corpus and where the simulator serves it.
type corpusObject struct {
	dataset string // corpus folder = receiver dataset
	file    string
	obj     map[string]any
	simSet  string // simulator dataset
	kind    string // receiver sign-in kind ("" = every source of the dataset)
}

func readCorpus(t *testing.T) []corpusObject {
	t.Helper()
	var out []corpusObject
	dir := corpusDir(t)
	for _, ds := range catalog.All() {
		files, err := filepath.Glob(filepath.Join(dir, ds.Name, "*.json"))
		require.NoError(t, err)
		for _, f := range files {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			var obj map[string]any
			require.NoError(t, json.Unmarshal(raw, &obj), f)
			o := corpusObject{dataset: ds.Name, file: filepath.Base(f), obj: obj, simSet: ds.Name}
			switch {
			case ds == catalog.SignIns:
				o.kind = catalog.SignInsInteractive.Variant
			case ds == catalog.RoleAssignments && strings.Contains(o.file, "eligibility"):
				o.simSet = "role_eligibility_schedules"
			}
			out = append(out, o)
		}
	}
	require.NotEmpty(t, out, "no Graph corpus at %s (shared/graph-corpus above the repository, or $O365_GRAPH_CORPUS)", dir)
	return out
}

var updateCorpus = update // -update rewrites testdata/corpus too

// TestCorpus serves every object of the Graph corpus from the simulator, each in a tenant of its own
// (several objects share an id), reads them with the real o365 receiver into the processor, and compares
// each object's normalized records with testdata/corpus/<dataset>/<file> (rewrite with -update). Every
// object must come through: normalized, or with a normalization error the README documents.
//
// The only change to an object is its receiver time field (the cursor Graph filters on), moved to an
// hour ago so that the receiver's window holds it; the normalized attributes never carry that field.
func TestCorpus(t *testing.T) {
	objects := readCorpus(t)
	cursorTime := graphsim.FormatTime(time.Now().Add(-time.Hour).UTC())
	simCfg := graphsim.Config{Seed: 1}
	for i := range objects {
		ten := graphsimtest.Tenant(i+1, map[string]graphsim.DatasetSpec{})
		ten.Name = fmt.Sprintf("corpus%03d", i+1)
		simCfg.Tenants = append(simCfg.Tenants, ten)
	}
	sim := graphsimtest.Start(t, simCfg)

	rcfg := o365receiver.NewFactory().CreateDefaultConfig().(*o365receiver.Config)
	rcfg.GraphEndpoint = sim.URL()
	rcfg.AuthorityHost = sim.URL() + "/"
	rcfg.HTTP.TLS.CAFile = sim.CAFile
	rcfg.PollInterval = time.Hour // one poll: a snapshot polled again would repeat itself
	rcfg.InitialLookback = 24 * time.Hour
	rcfg.RateLimits = nil
	enabled := true
	for i, o := range objects {
		tid := graphsimtest.TenantID(i + 1)
		obj := cloneJSON(t, o.obj)
		ds, _ := catalog.ByName(o.dataset)
		if ds.Kind == catalog.EventStream {
			obj[ds.TimeField] = cursorTime
			require.NoError(t, sim.Inject(tid, o.simSet, time.Time{}, obj), o.file)
		} else {
			require.NoError(t, sim.SetItem(tid, o.simSet, obj), o.file)
		}
		dc := o365receiver.DatasetConfig{Enabled: &enabled}
		if o.kind != "" {
			dc.Kinds = []string{o.kind}
		}
		rcfg.Tenants = append(rcfg.Tenants, o365receiver.TenantConfig{
			Name: simCfg.Tenants[i].Name, TenantID: tid, ClientID: graphsimtest.ClientID, ClientSecret: graphsimtest.Secret,
			Datasets: map[string]o365receiver.DatasetConfig{o.dataset: dc},
		})
	}
	require.NoError(t, rcfg.Validate())

	pcfg := defaultConfig()
	pcfg.Correlation.Enabled = false // the goldens are the normalized records; rules have their own tests
	sink := &recordSink{byTenant: map[string][]plog.LogRecord{}}
	pset := nopSettings()
	proc, err := NewFactory().CreateLogs(context.Background(), pset, pcfg, sink)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, proc.Shutdown(context.Background())) })
	rcv, err := o365receiver.NewFactory().CreateLogs(context.Background(),
		receivertest.NewNopSettings(o365receiver.NewFactory().Type()), rcfg, proc)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			require.NoError(t, rcv.Shutdown(context.Background()))
		}
	}
	t.Cleanup(stop)

	// Each tenant yields its object's record, and an mfa_coverage snapshot also its summary record.
	want := func(o corpusObject) int {
		if o.dataset == a.DatasetMFACoverage {
			return 2
		}
		return 1
	}
	require.Eventually(t, func() bool {
		for i, o := range objects {
			if sink.count(simCfg.Tenants[i].Name) < want(o) {
				return false
			}
		}
		return true
	}, 2*time.Minute, 20*time.Millisecond, "every corpus object reaches the processor")
	stop()

	documented := documentedErrors(t)
	listed := readmeKeys(t)
	normalized, failed := 0, map[string]int{}
	for i, o := range objects {
		recs := sink.records(simCfg.Tenants[i].Name)
		require.Len(t, recs, want(o), o.file)
		var got []goldenRecord
		for _, lr := range recs {
			attrs := lr.Attributes().AsRaw()
			delete(attrs, a.SnapshotTime) // the time of the test's snapshot
			if msg, bad := attrs[a.NormalizationError].(string); bad {
				failed[msg]++
				assert.True(t, documented(msg), "%s/%s: normalization error %q is not in the README", o.dataset, o.file, msg)
			} else {
				assert.NotEmpty(t, attrs[a.EventType], "%s/%s", o.dataset, o.file)
				if lr.EventName() == o.datasetEvent() {
					normalized++
				}
			}
			for k := range attrs {
				assert.True(t, listed(k), "%s/%s: attribute %s is not in the README's \"Normalized attributes\"", o.dataset, o.file, k)
			}
			got = append(got, goldenRecord{EventName: lr.EventName(), Attributes: attrs})
		}
		sort.Slice(got, func(i, j int) bool { return got[i].EventName < got[j].EventName })
		compareGolden(t, filepath.Join("testdata", "corpus", o.dataset, o.file), got)
	}
	t.Logf("corpus: %d objects, %d normalized, normalization errors: %v", len(objects), normalized, failed)
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	stated := regexp.MustCompile(`Of the (\d+) objects of the Graph corpus\s+\(` + "`TestCorpus`" + `\), (\d+) normalize`).FindStringSubmatch(string(readme))
	require.NotNil(t, stated, "README: the corpus sentence of \"Normalization errors\"")
	assert.Equal(t, []string{fmt.Sprint(len(objects)), fmt.Sprint(normalized)}, stated[1:], "README's corpus figures")
}

func (o corpusObject) datasetEvent() string {
	ds, _ := catalog.ByName(o.dataset)
	return ds.EventName
}

type goldenRecord struct {
	EventName  string         `json:"event_name"`
	Attributes map[string]any `json:"attributes"`
}

// compareGolden compares records with a golden JSON file (rewritten with -update).
func compareGolden(t *testing.T, path string, got []goldenRecord) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	require.NoError(t, err)
	b = append(b, '\n')
	if *updateCorpus {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, b, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: run with -update")
	assert.JSONEq(t, string(want), string(b), path)
}

// readmeSection is the README's text from the heading to the next end (a heading of the level that
// closes the section).
func readmeSection(t *testing.T, heading, end string) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), heading)
	require.True(t, ok, "README.md has no %q section", heading)
	section, _, _ = strings.Cut(section, end)
	return section
}

// documentedErrors returns a test of whether a normalization error is one the README lists (a row of
// its "Normalization errors" table, written with `…` for the field).
func documentedErrors(t *testing.T) func(string) bool {
	t.Helper()
	section := readmeSection(t, "### Normalization errors", "\n## ")
	var rows []string
	for _, line := range strings.Split(section, "\n") {
		if m := regexp.MustCompile("^\\| (.+?) \\|").FindStringSubmatch(line); m != nil {
			rows = append(rows, strings.ReplaceAll(m[1], "\\|", "|"))
		}
	}
	return func(msg string) bool {
		for _, r := range rows {
			if strings.Contains(r, msg) || strings.Contains(r, "`"+strings.ReplaceAll(msg, "`", "")+"`") {
				return true
			}
		}
		return false
	}
}

// readmeKeys reads the README's "Normalized attributes" tables, which must give each key one row (its
// first cell), and returns a test of whether a key is listed (`prefix.<field>` rows list a family).
func readmeKeys(t *testing.T) func(string) bool {
	t.Helper()
	section := readmeSection(t, "## Normalized attributes", "\n## ")
	row := regexp.MustCompile("^\\| `([a-z0-9_.<>]+)` \\|")
	keys := map[string]int{}
	var prefixes []string
	for i, line := range strings.Split(section, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if prev, dup := keys[m[1]]; dup {
			t.Errorf("README: %s has two rows (lines %d and %d of the section)", m[1], prev, i)
		}
		keys[m[1]] = i
		if p, ok := strings.CutSuffix(m[1], "<field>"); ok {
			prefixes = append(prefixes, p)
		}
	}
	return func(k string) bool {
		if _, ok := keys[k]; ok {
			return true
		}
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				return true
			}
		}
		return false
	}
}

func cloneJSON(t *testing.T, m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// recordSink keeps the records the processor passes on, by tenant name (incident candidates aside).
type recordSink struct {
	consumertest.LogsSink
	mu       sync.Mutex
	byTenant map[string][]plog.LogRecord
}

func (s *recordSink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		if strAttr(rl.Resource().Attributes(), a.Dataset) == a.DatasetIncidentCandidates {
			continue
		}
		tenant := strAttr(rl.Resource().Attributes(), a.TenantName)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := plog.NewLogRecord()
				lrs.At(k).CopyTo(lr)
				s.byTenant[tenant] = append(s.byTenant[tenant], lr)
			}
		}
	}
	return nil
}

func (s *recordSink) count(tenant string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byTenant[tenant])
}

func (s *recordSink) records(tenant string) []plog.LogRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byTenant[tenant]
}

package o365exportexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

var (
	update  = flag.Bool("update", false, "rewrite the golden documents under testdata/golden")
	capture = flag.Bool("capture", false, "rewrite the golden input under testdata/input from the Graph simulator")
)

// goldenCases are the configurations whose documents are pinned.
var goldenCases = []struct {
	name   string
	config func(*Config)
}{
	{"hourly", func(*Config) {}},
	{"daily_events", func(c *Config) { c.Period = 24 * time.Hour; c.IncludeEvents = true }},
}

// goldenFlushTime is the wall clock of the golden runs (it appears nowhere in the documents).
var goldenFlushTime = goldenAnchor.Add(time.Hour)

// export runs batches through an exporter configured by tweak and returns the files it wrote.
func export(t *testing.T, tweak func(*Config), batches []plog.Logs) map[string][]byte {
	cfg := testConfig(t)
	tweak(cfg)
	e, clock, _ := newTestExporter(t, cfg)
	clock.Set(goldenFlushTime)
	for _, ld := range batches {
		require.NoError(t, e.consume(context.Background(), ld))
	}
	e.flush(context.Background(), goldenFlushTime, true)
	return readTree(t, cfg.Directory.Get().Path)
}

// compareGolden is the golden comparison: byte for byte. Two documents that mean the same but differ
// in key order, whitespace or number formatting are different documents.
func compareGolden(want, got []byte) error {
	if bytes.Equal(want, got) {
		return nil
	}
	wl, gl := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if !bytes.Equal(w, g) {
			return fmt.Errorf("line %d: want %q, got %q", i+1, w, g)
		}
	}
	return fmt.Errorf("the documents differ (%d and %d bytes)", len(want), len(got))
}

// TestGolden pins the bytes of the documents made from the golden input (Graph pages captured from the
// simulator, through the o365_mapping processor): testdata/golden/<case>/<tenant>/<file>.json. Every
// document validates against the schema. Regenerate with `go test -run TestGolden -update`
// (`-capture` also re-captures the input from the simulator).
func TestGolden(t *testing.T) {
	if *capture {
		captureInput(t)
	}
	batches := processedInput(t)
	incidents := map[string]int{}
	for _, ld := range batches {
		forEachRecord(ld, func(lr plog.LogRecord) {
			if lr.EventName() == a.EventIncidentCandidate {
				v, _ := lr.Attributes().Get(a.IncidentRule)
				incidents[v.Str()]++
			}
		})
	}
	require.Positive(t, incidents["brute_force"], "the injected brute force makes an incident: %v", incidents)
	require.Positive(t, incidents["impossible_travel"], "the injected travel makes an incident: %v", incidents)

	for _, gc := range goldenCases {
		t.Run(gc.name, func(t *testing.T) {
			got := export(t, gc.config, batches)
			require.NotEmpty(t, got)
			dir := filepath.Join("testdata", "golden", gc.name)
			if *update {
				require.NoError(t, os.RemoveAll(dir))
				for name, b := range got {
					require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
					require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
				}
			}
			want := readTree(t, dir)
			require.Equal(t, keys(want), keys(got), "document files")
			for name, b := range got {
				validate(t, b)
				require.NoError(t, compareGolden(want[name], b), name)
			}
		})
	}
}

// TestGoldenIsOrderIndependent: the same records in another order, split into other batches and partly
// delivered twice give the same bytes.
func TestGoldenIsOrderIndependent(t *testing.T) {
	batches := processedInput(t)
	var all []plog.Logs
	for _, ld := range batches {
		all = append(all, splitRecords(ld)...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 3 {
		shuffled := append([]plog.Logs(nil), all...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		shuffled = append(shuffled, shuffled[:len(shuffled)/3]...) // redelivered
		for _, gc := range goldenCases {
			want := readTree(t, filepath.Join("testdata", "golden", gc.name))
			got := export(t, gc.config, shuffled)
			require.Equal(t, keys(want), keys(got), "run %d %s", run, gc.name)
			for name, b := range got {
				require.NoError(t, compareGolden(want[name], b), "run %d %s %s", run, gc.name, name)
			}
		}
	}
}

// TestGoldenComparisonIsByteExact proves the golden comparison would catch a document that means the
// same but is written differently: keys in another order, another float format, another indentation.
func TestGoldenComparisonIsByteExact(t *testing.T) {
	golden := readTree(t, filepath.Join("testdata", "golden", "daily_events"))
	require.Len(t, golden, 1)
	var doc []byte
	for _, b := range golden {
		doc = b
	}
	require.NoError(t, compareGolden(doc, doc))

	sameMeaning := func(x, y []byte) bool {
		var vx, vy any
		require.NoError(t, json.Unmarshal(x, &vx))
		require.NoError(t, json.Unmarshal(y, &vy))
		return reflect.DeepEqual(vx, vy)
	}

	// Field order: the document's struct encoded as declared (export_version is not first when sorted).
	parsed, err := parseDocument(doc)
	require.NoError(t, err)
	declared, err := json.MarshalIndent(parsed, "", "  ")
	require.NoError(t, err)
	declared = append(declared, '\n')
	require.True(t, sameMeaning(doc, declared))
	require.Error(t, compareGolden(doc, declared), "a changed field order must fail")

	// Float format: the first float rewritten in another notation that parses to the same value.
	float := regexp.MustCompile(`: (-?[0-9]+\.[0-9]+)(,?)\n`)
	m := float.FindSubmatchIndex(doc)
	require.NotNil(t, m, "the golden document has a float")
	literal := string(doc[m[2]:m[3]])
	f, err := strconv.ParseFloat(literal, 64)
	require.NoError(t, err)
	for _, other := range []string{strconv.FormatFloat(f, 'e', -1, 64), literal + "0", strconv.FormatFloat(f, 'f', 20, 64)} {
		mutated := append(append(append([]byte(nil), doc[:m[2]]...), other...), doc[m[3]:]...)
		require.True(t, sameMeaning(doc, mutated), other)
		require.Error(t, compareGolden(doc, mutated), "float %s written as %s must fail", literal, other)
	}

	// Indentation and the final newline.
	compact := new(bytes.Buffer)
	require.NoError(t, json.Compact(compact, doc))
	require.Error(t, compareGolden(doc, compact.Bytes()))
	require.Error(t, compareGolden(doc, bytes.TrimSuffix(doc, []byte("\n"))))

	// And the exporter itself never writes those variants: its output is canonical.
	requireCanonical(t, doc)
	assert.True(t, strings.HasPrefix(string(doc), "{\n  \"counts\": {"))
}

func forEachRecord(ld plog.Logs, fn func(plog.LogRecord)) {
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		sls := ld.ResourceLogs().At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				fn(lrs.At(k))
			}
		}
	}
}

// splitRecords returns one Logs per record, with its resource and scope.
func splitRecords(ld plog.Logs) []plog.Logs {
	var out []plog.Logs
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			for k := 0; k < sl.LogRecords().Len(); k++ {
				one := plog.NewLogs()
				orl := one.ResourceLogs().AppendEmpty()
				rl.Resource().CopyTo(orl.Resource())
				osl := orl.ScopeLogs().AppendEmpty()
				sl.Scope().CopyTo(osl.Scope())
				sl.LogRecords().At(k).CopyTo(osl.LogRecords().AppendEmpty())
				out = append(out, one)
			}
		}
	}
	return out
}

package o365mappingprocessor

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// classSets maps a log type or an ocsf.* key to a set of OCSF class uids.
type classSets map[string]map[int64]bool

func (s classSets) add(k string, uid int64) {
	if s[k] == nil {
		s[k] = map[int64]bool{}
	}
	s[k][uid] = true
}

type ocsfClass struct {
	name         string
	category     int64
	categoryName string
}

// ocsfReadme is the README's OCSF section: its classes, the classes of each log type (the class table)
// and the classes that write each ocsf.* key (the attribute table).
type ocsfReadme struct {
	classes  map[int64]ocsfClass
	logTypes classSets
	keys     classSets
}

func readmeOCSF(t *testing.T) ocsfReadme {
	t.Helper()
	section := readmeSection(t, "### OCSF (`ocsf: true`)", "\n### ")
	classRow := regexp.MustCompile(`^\| [^|]+ \| ([^|]+) \| \*\*(\d+)\*\* ([^(|]+) \((\d+) ([^)]+)\) \|$`)
	keyRow := regexp.MustCompile("^\\| `(ocsf\\.[a-z_.]+)` \\| [a-z]+ \\| ([^|]+) \\|")
	backticked := regexp.MustCompile("`([a-z_]+)`")
	r := ocsfReadme{classes: map[int64]ocsfClass{}, logTypes: classSets{}, keys: classSets{}}
	var keyRows [][]string
	for _, line := range strings.Split(section, "\n") {
		if m := classRow.FindStringSubmatch(line); m != nil {
			uid, _ := strconv.ParseInt(m[2], 10, 64)
			category, _ := strconv.ParseInt(m[4], 10, 64)
			r.classes[uid] = ocsfClass{name: strings.TrimSpace(m[3]), category: category, categoryName: m[5]}
			for _, lt := range backticked.FindAllStringSubmatch(m[1], -1) {
				r.logTypes.add(lt[1], uid)
			}
		} else if m := keyRow.FindStringSubmatch(line); m != nil {
			keyRows = append(keyRows, m[1:])
		}
	}
	require.NotEmpty(t, r.classes, "README: the OCSF class table")
	require.NotEmpty(t, keyRows, "README: the OCSF attribute table")
	for _, row := range keyRows {
		key, classes := row[0], strings.TrimSpace(row[1])
		r.keys[key] = map[int64]bool{}
		if classes == "all" {
			for uid := range r.classes {
				r.keys.add(key, uid)
			}
			continue
		}
		for _, f := range strings.Split(classes, ",") {
			uid, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			require.NoError(t, err, "README: the classes of %s", key)
			require.Contains(t, r.classes, uid, "README: %s names class %d, which the class table does not have", key, uid)
			r.keys.add(key, uid)
		}
	}
	return r
}

// check fails on a record whose OCSF class, class name or category is not its log type's in the
// README's class table, on an ocsf.* key the attribute table does not give the record's class, on
// ocsf.* keys without a class and, when ocsfOn (`ocsf: true`), on a record of a log type of the class
// table without a class. seen, when not nil, collects the log types and keys checked, by class.
func (r ocsfReadme) check(t *testing.T, ld plog.Logs, ocsfOn bool, seen *ocsfReadme) {
	t.Helper()
	for _, lr := range allRecords(ld) {
		attrs := lr.Attributes()
		logType := attrStr(lr, a.LogType)
		v, classified := attrs.Get("ocsf.class_uid")
		if !classified {
			for k := range attrs.All() {
				assert.False(t, strings.HasPrefix(k, "ocsf."), "%s: %s on a record without ocsf.class_uid", logType, k)
			}
			if ocsfOn && logType != "" {
				assert.Empty(t, r.logTypes[logType], "%s (%s): no OCSF class, though the README gives the log type one", logType, lr.EventName())
			}
			continue
		}
		uid := v.Int()
		assert.True(t, r.logTypes[logType][uid], "%s: OCSF class %d is not one the README's class table gives the log type", logType, uid)
		c := r.classes[uid]
		assert.Equal(t, c.name, attrStr(lr, "ocsf.class_name"), "%s: ocsf.class_name of class %d", logType, uid)
		assert.Equal(t, strconv.FormatInt(c.category, 10), attrStr(lr, "ocsf.category_uid"), "%s: ocsf.category_uid of class %d", logType, uid)
		assert.Equal(t, c.categoryName, attrStr(lr, "ocsf.category_name"), "%s: ocsf.category_name of class %d", logType, uid)
		for k := range attrs.All() {
			if !strings.HasPrefix(k, "ocsf.") {
				continue
			}
			assert.True(t, r.keys[k][uid], "%s: %s on a record of class %d, which the README's OCSF attribute table does not give that class", logType, k, uid)
			if seen != nil {
				seen.keys.add(k, uid)
			}
		}
		if seen != nil {
			seen.logTypes.add(logType, uid)
		}
	}
}

// TestOCSF runs every golden case's page, every object of the Graph corpus and unified audit and DLP
// records through the processor with `ocsf: true` and checks the README's OCSF tables both ways: each
// record has the class of its log type (none for the log types the class table does not name) and only
// keys its class writes (check), and each log type and key the tables give a class was seen on a record
// of that class, so that no row of the tables is untested.
func TestOCSF(t *testing.T) {
	ocsf := readmeOCSF(t)
	seen := ocsfReadme{logTypes: classSets{}, keys: classSets{}}
	for _, tc := range goldenCases() {
		cfg := tc.cfg(t)
		cfg.OCSF = true
		p, sink, _ := newTestProcessor(t, cfg)
		require.NoError(t, p.ConsumeLogs(context.Background(), tc.logs(t)), tc.name)
		for _, ld := range sink.AllLogs() {
			ocsf.check(t, ld, true, &seen)
		}
	}
	cfg := defaultConfig()
	cfg.OCSF = true
	p, sink, _ := newTestProcessor(t, cfg)
	for _, o := range readCorpus(t) {
		obj, err := json.Marshal(o.obj)
		require.NoError(t, err)
		require.NoError(t, p.ConsumeLogs(context.Background(), receiverLogs(t, o.dataset, page(string(obj)))), o.file)
	}
	// The Management Activity API datasets: the samples, and a DLP rule match (RecordType 13,
	// ComplianceDLPExchange) of the same common schema.
	for _, b := range []batch{
		exchangeAudit(sample(t, "unified_audit_inbox_rule")),
		{dataset: a.DatasetAuditSharePoint, objects: []string{sample(t, "unified_audit_file_downloaded"), sample(t, "unified_audit_anonymous_link")}},
		{dataset: a.DatasetDLP, objects: []string{edit(t, sample(t, "unified_audit_inbox_rule"),
			map[string]any{"Operation": "DlpRuleMatch", "RecordType": 13, "Parameters": nil})}},
	} {
		require.NoError(t, p.ConsumeLogs(context.Background(), b.logs(t)), b.dataset)
	}
	for _, ld := range sink.AllLogs() {
		ocsf.check(t, ld, true, &seen)
	}
	assertSameClasses(t, "log type", ocsf.logTypes, seen.logTypes)
	assertSameClasses(t, "key", ocsf.keys, seen.keys)
}

// assertSameClasses fails on a (name, class) pair of the README that the records did not show.
func assertSameClasses(t *testing.T, what string, readme, seen classSets) {
	t.Helper()
	for name, classes := range readme {
		for uid := range classes {
			assert.True(t, seen[name][uid], "README: %s %s of class %d, but no record of that class had it", what, name, uid)
		}
	}
}

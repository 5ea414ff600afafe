package o365exportexporter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// ExportVersion is the `export_version` of every document this exporter writes.
const ExportVersion = 1

// document is the export JSON, version 1 (export.v1.schema.json). Field order does not matter: encode
// sorts every object's keys.
type document struct {
	ExportVersion      int                `json:"export_version"`
	DocumentID         string             `json:"document_id"`
	Tenant             docTenant          `json:"tenant"`
	Period             docPeriod          `json:"period"`
	TimeRange          docTimeRange       `json:"time_range"`
	Records            docRecords         `json:"records"`
	Counts             docCounts          `json:"counts"`
	IncidentCandidates []docIncident      `json:"incident_candidates"`
	Events             *[]json.RawMessage `json:"events,omitempty"`
	GeneratedAt        string             `json:"generated_at,omitempty"`
}

type docTenant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type docPeriod struct {
	Start    string `json:"start"`
	End      string `json:"end"`
	Duration string `json:"duration"`
}

type docTimeRange struct {
	First string `json:"first"`
	Last  string `json:"last"`
}

type docRecords struct {
	Total        int64            `json:"total"`
	ByDataset    map[string]int64 `json:"by_dataset"`
	Unmapped     int64            `json:"unmapped"`
	Unnormalized int64            `json:"unnormalized"`
	Dropped      int64            `json:"dropped"`
}

type docCounts struct {
	ByDomain    map[string]int64 `json:"by_domain"`
	ByControl   map[string]int64 `json:"by_control"`
	ByMetric    map[string]int64 `json:"by_metric"`
	ByEventType map[string]int64 `json:"by_event_type"`
	ByMapping   []docMapping     `json:"by_mapping"`
}

type docMapping struct {
	Domain  string `json:"domain"`
	Control string `json:"control"`
	Metric  string `json:"metric"`
	Count   int64  `json:"count"`
}

type docIncident struct {
	ID            string         `json:"id"`
	Rule          string         `json:"rule"`
	Severity      string         `json:"severity"`
	Description   string         `json:"description,omitempty"`
	Window        docTimeWindow  `json:"window"`
	Entities      map[string]any `json:"entities"`
	Context       map[string]any `json:"context,omitempty"`
	Evidence      docEvidence    `json:"evidence"`
	DistinctCount *int64         `json:"distinct_count,omitempty"`
	DistanceKm    *float64       `json:"distance_km,omitempty"`
	SpeedKmh      *float64       `json:"speed_kmh,omitempty"`
}

type docTimeWindow struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type docEvidence struct {
	Count     int64    `json:"count"`
	RecordIDs []string `json:"record_ids"`
}

// docEvent is one normalized event (include_events), Attributes as jsonMap makes them. eventEncoder
// writes its json.Marshal bytes by hand (event.go); the tests hold the two together.
type docEvent struct {
	RecordID   string         `json:"record_id"`
	Timestamp  string         `json:"timestamp"`
	EventName  string         `json:"event_name"`
	Dataset    string         `json:"dataset"`
	Attributes map[string]any `json:"attributes"`
}

// encode renders v as canonical JSON: every object's keys sorted (byte order), two-space indentation,
// numbers as encoding/json formats them (integers as integers; floats in the shortest form that
// round-trips, ECMAScript style: 47.6062, 1e-7, 1e+21), no HTML escaping, and one "\n" at the end. A
// struct is first marshaled and then decoded into maps so that its declaration order cannot leak into
// the output.
func encode(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return canonicalize(raw)
}

// canonicalize re-encodes a JSON text canonically (see encode). Numbers are kept exactly as written.
func canonicalize(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(tree); err != nil { // map keys are sorted; Encode appends "\n"
		return nil, err
	}
	return buf.Bytes(), nil
}

// formatTime is the one time format of the document: RFC 3339 in UTC, fractional seconds only as far as
// they are non-zero (2024-03-13T11:00:00Z, 2024-03-13T11:00:00.123Z).
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// isoDuration formats a whole-minute duration as ISO 8601 (PT1H, PT15M, PT1H30M, PT24H).
func isoDuration(d time.Duration) string {
	h := int64(d / time.Hour)
	m := int64((d % time.Hour) / time.Minute)
	var b strings.Builder
	b.WriteString("PT")
	if h > 0 {
		fmt.Fprintf(&b, "%dH", h)
	}
	if m > 0 || h == 0 {
		fmt.Fprintf(&b, "%dM", m)
	}
	return b.String()
}

// parseISODuration is isoDuration's inverse (for the file names the exporter reads back).
func parseISODuration(s string) (time.Duration, bool) {
	if !strings.HasPrefix(s, "PT") || len(s) < 4 {
		return 0, false
	}
	var total time.Duration
	n := -1
	for _, c := range s[2:] {
		switch {
		case c >= '0' && c <= '9':
			if n < 0 {
				n = 0
			}
			n = n*10 + int(c-'0')
			if n > 1_000_000 {
				return 0, false
			}
		case c == 'H' && n >= 0:
			total += time.Duration(n) * time.Hour
			n = -1
		case c == 'M' && n >= 0:
			total += time.Duration(n) * time.Minute
			n = -1
		default:
			return 0, false
		}
	}
	return total, n < 0 && total > 0
}

package o365mappingprocessor

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// OCSF (Open Cybersecurity Schema Framework, schema 1.3.0) classification written as flat `ocsf.*`
// attributes, the attribute paths of the OCSF event (`ocsf.src_endpoint.ip` is the event's
// src_endpoint.ip), so a consumer can rebuild the OCSF JSON without knowing Graph. Which records get
// which class, why, and every key with its source are in the README's OCSF section (TestOCSF holds the
// code to it).
const ocsfVersion = "1.3.0"

const (
	ocsfClassAccountChange    = 3001
	ocsfClassAuthentication   = 3002
	ocsfClassDetectionFinding = 2004
	ocsfClassAPIActivity      = 6003
)

var ocsfClassNames = map[int]string{
	ocsfClassAccountChange:    "Account Change",
	ocsfClassAuthentication:   "Authentication",
	ocsfClassDetectionFinding: "Detection Finding",
	ocsfClassAPIActivity:      "API Activity",
}

var ocsfCategories = map[int]struct {
	uid  int
	name string
}{
	ocsfClassAccountChange:    {3, "Identity & Access Management"},
	ocsfClassAuthentication:   {3, "Identity & Access Management"},
	ocsfClassDetectionFinding: {2, "Findings"},
	ocsfClassAPIActivity:      {6, "Application Activity"},
}

// OCSF severity_id values.
const (
	sevUnknown       = 0
	sevInformational = 1
	sevLow           = 2
	sevMedium        = 3
	sevHigh          = 4
	sevCritical      = 5
)

var ocsfSeverityNames = []string{"Unknown", "Informational", "Low", "Medium", "High", "Critical", "Fatal"}

// OCSF status_id values of non-finding classes.
const (
	statusUnknown = 0
	statusSuccess = 1
	statusFailure = 2
	statusOther   = 99
)

// OCSF status_id values of findings.
const (
	findingNew        = 1
	findingInProgress = 2
	findingResolved   = 4
)

type ocsfEvent struct {
	class      int
	activityID int
	activity   string
	statusID   int
	severityID int
	product    string
}

func (e *ocsfEvent) write(attrs pcommon.Map, ts pcommon.Timestamp, recordID string) {
	cat := ocsfCategories[e.class]
	attrs.PutInt("ocsf.class_uid", int64(e.class))
	attrs.PutStr("ocsf.class_name", ocsfClassNames[e.class])
	attrs.PutInt("ocsf.category_uid", int64(cat.uid))
	attrs.PutStr("ocsf.category_name", cat.name)
	attrs.PutInt("ocsf.activity_id", int64(e.activityID))
	putStr(attrs, "ocsf.activity_name", e.activity)
	attrs.PutInt("ocsf.type_uid", int64(e.class*100+e.activityID))
	attrs.PutInt("ocsf.status_id", int64(e.statusID))
	if name := e.statusName(); name != "" {
		attrs.PutStr("ocsf.status", name)
	}
	attrs.PutInt("ocsf.severity_id", int64(e.severityID))
	if e.severityID >= 0 && e.severityID < len(ocsfSeverityNames) {
		attrs.PutStr("ocsf.severity", ocsfSeverityNames[e.severityID])
	}
	if ts != 0 {
		attrs.PutInt("ocsf.time", int64(ts)/1e6)
	}
	attrs.PutStr("ocsf.metadata.version", ocsfVersion)
	attrs.PutStr("ocsf.metadata.product.vendor_name", "Microsoft")
	putStr(attrs, "ocsf.metadata.product.name", e.product)
	putStr(attrs, "ocsf.metadata.uid", recordID)
}

func (e *ocsfEvent) statusName() string {
	if e.class == ocsfClassDetectionFinding {
		switch e.statusID {
		case findingNew:
			return "New"
		case findingInProgress:
			return "In Progress"
		case findingResolved:
			return "Resolved"
		case statusOther:
			return "Other"
		}
		return "Unknown"
	}
	switch e.statusID {
	case statusSuccess:
		return "Success"
	case statusFailure:
		return "Failure"
	case statusOther:
		return "Other"
	}
	return "Unknown"
}

// severityFromLevel maps Graph's risk levels and alert severities to an OCSF severity_id.
func severityFromLevel(level string) int {
	switch level {
	case "informational":
		return sevInformational
	case "low":
		return sevLow
	case "medium":
		return sevMedium
	case "high":
		return sevHigh
	case "critical":
		return sevCritical
	}
	return sevUnknown
}

func recordID(attrs pcommon.Map) string {
	if v, ok := attrs.Get("o365.record.id"); ok {
		return v.Str()
	}
	return ""
}

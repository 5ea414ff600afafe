package correlation

import (
	"cmp"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// maxRemembered bounds the remembered object states per tenant (policies and incidents together).
const maxRemembered = 10000

// Kinds of remembered state, the prefix of a memory key.
const (
	memPolicy   = "policy\x00"
	memIncident = "incident\x00"
)

// seen is a value of an object as seen in one version (a policy's state, an incident's severity), and
// that version (the record's time).
type seen struct {
	value   string
	version pcommon.Timestamp
}

// maxIncidentVersions bounds the versions remembered per incident: the newest ones.
const maxIncidentVersions = 16

// remember stores what key was seen as. A full memory is cleared (counted as evicted) rather than grown:
// a previous value it then lacks only leaves a later record without its previous_* attribute.
func (t *Tenant) remember(key string, versions []seen) {
	if _, known := t.memory[key]; !known && len(t.memory) >= maxRemembered {
		t.evicted += len(t.memory)
		clear(t.memory)
	}
	t.memory[strings.Clone(key)] = versions
}

// RememberPolicyState fills o365.policy.previous_state of a conditional access policy change record from
// the state last seen in an earlier version of the policy, and remembers the new one. Snapshot records
// only seed the memory (a change record of the same poll may come before or after its snapshot record; a
// state seen in the same version as the change record says nothing about the state before it). Change
// records and audits update it.
func (t *Tenant) RememberPolicyState(attrs pcommon.Map, logType string, version pcommon.Timestamp) {
	id := strAttr(attrs, a.PolicyID)
	if id == "" {
		return
	}
	key := memPolicy + id
	state := strAttr(attrs, a.PolicyState)
	change := strAttr(attrs, a.Change)
	last, known := t.memory[key]
	var prev seen
	if known {
		prev = last[0]
	}
	if logType == a.LogTypeConditionalAccessPolicy && change != "" && known && prev.value != "" && prev.version != version {
		if _, has := attrs.Get(a.PolicyPreviousState); !has {
			attrs.PutStr(a.PolicyPreviousState, prev.value)
		}
	}
	switch {
	case change == a.ChangeRemoved:
		delete(t.memory, key)
	case state == "":
	case logType == a.LogTypeConditionalAccessPolicy && change == "" && known:
		// a snapshot record: the memory already has this policy
	default:
		t.remember(key, []seen{{value: strings.Clone(state), version: version}})
	}
}

// RememberIncidentSeverity fills, for a Defender XDR incident version, o365.security_incident.
// previous_severity (the severity of the nearest earlier version seen) and o365.security_incident.
// rose_to_high (true on the record that completes "a version below high, then a later one at high"),
// and remembers the version. Versions may arrive in any order — Graph lists incidents newest first, so
// one poll delivers an incident's versions backwards — and the one that arrives second completes the
// rise: the version at high when it comes after the lower one, the lower one when it comes after. The
// same version again (a batch delivered twice) changes nothing.
func (t *Tenant) RememberIncidentSeverity(attrs pcommon.Map, version pcommon.Timestamp) {
	id, severity := strAttr(attrs, a.SecurityIncidentID), strAttr(attrs, a.SecurityIncidentSeverity)
	if id == "" || severity == "" {
		return
	}
	key := memIncident + id
	versions := t.memory[key] // oldest first
	k, found := slices.BinarySearchFunc(versions, version, func(s seen, v pcommon.Timestamp) int { return cmp.Compare(s.version, v) })
	if found {
		return
	}
	high := func(s string) bool { return s == "high" }
	if k > 0 {
		prev := versions[k-1]
		if _, has := attrs.Get(a.SecurityIncidentPreviousSeverity); !has {
			attrs.PutStr(a.SecurityIncidentPreviousSeverity, prev.value)
		}
		if high(severity) && !high(prev.value) {
			attrs.PutBool(a.SecurityIncidentRoseToHigh, true)
		}
	}
	// Arriving before the version after it: that one rose from this one, unless it had already risen
	// from a version before this one.
	if k < len(versions) && !high(severity) && high(versions[k].value) && (k == 0 || high(versions[k-1].value)) {
		attrs.PutBool(a.SecurityIncidentRoseToHigh, true)
	}
	versions = slices.Insert(slices.Clone(versions), k, seen{value: strings.Clone(severity), version: version})
	if len(versions) > maxIncidentVersions {
		versions = versions[len(versions)-maxIncidentVersions:]
	}
	t.remember(key, versions)
}

func strAttr(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

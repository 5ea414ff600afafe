package correlation

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// maxPolicyStates bounds the remembered conditional access policy states per tenant.
const maxPolicyStates = 10000

// policyState is a conditional access policy's state as last seen, and the version (the record's time:
// the policy's modifiedDateTime) it was seen in.
type policyState struct {
	state   string
	version pcommon.Timestamp
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
	state := strAttr(attrs, a.PolicyState)
	change := strAttr(attrs, a.Change)
	prev, known := t.policyStates[id]
	if logType == a.LogTypeConditionalAccessPolicy && change != "" && known && prev.state != "" && prev.version != version {
		if _, has := attrs.Get(a.PolicyPreviousState); !has {
			attrs.PutStr(a.PolicyPreviousState, prev.state)
		}
	}
	switch {
	case change == a.ChangeRemoved:
		delete(t.policyStates, id)
	case state == "":
	case logType == a.LogTypeConditionalAccessPolicy && change == "" && known:
		// a snapshot record: the memory already has this policy
	default:
		if len(t.policyStates) >= maxPolicyStates && !known {
			t.evicted += len(t.policyStates)
			clear(t.policyStates)
		}
		t.policyStates[strings.Clone(id)] = policyState{state: strings.Clone(state), version: version}
	}
}

func strAttr(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

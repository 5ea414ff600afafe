package o365mappingprocessor

import (
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// normalizeUnifiedAudit maps the common schema of the Office 365 Management Activity API (every record
// of every content type has it: Id, CreationTime, Operation, Workload, UserId, ClientIP, ResultStatus —
// learn.microsoft.com/office/office-365-management-api/office-365-management-activity-api-schema,
// "Common schema"). The event type is unified_audit.<workload>.<operation>.
func normalizeUnifiedAudit(n *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError) {
	var id, operation, workload, user, userKey, ip, result, org string
	var sp sharePointFields
	var ids []pcommon.Value
	params := missingValue
	body.Range(func(k string, v pcommon.Value) bool {
		if sp.read(k, v) {
			return true
		}
		switch k {
		case "Id":
			id = str(v)
		case "Operation":
			operation = str(v)
		case "Workload":
			workload = str(v)
		case "UserId":
			user = str(v)
			ids = append(ids, v)
		case "UserKey":
			userKey = str(v)
			ids = append(ids, v)
		case "ClientIP":
			ip = str(v)
		case "ResultStatus":
			result = str(v)
		case "OrganizationName":
			org = str(v)
		case "Parameters":
			params = v
		}
		return true
	})
	if id == "" {
		return "", missing("Id")
	}
	if operation == "" {
		return "", missing("Operation")
	}
	n.pseudonymizeBody(ids...)
	typ := eventType("unified_audit", workload, operation)
	attrs := lr.Attributes()
	attrs.EnsureCapacity(attrs.Len() + 18)
	logType := a.LogTypeUnifiedAudit
	if strings.EqualFold(workload, "DLP") || strings.HasPrefix(operation, "Dlp") {
		logType = a.LogTypeDLP
	}
	writeCommon(attrs, typ, logType, operation)
	// ResultStatus is free text per workload: Succeeded/Success/True, Failed/Failure/False, PartiallySucceeded.
	switch strings.ToLower(result) {
	case "succeeded", "success", "true":
		attrs.PutStr(a.Result, a.ResultSuccess)
	case "failed", "failure", "false":
		attrs.PutStr(a.Result, a.ResultFailure)
		putStr(attrs, a.ResultReason, result)
	}
	putStr(attrs, a.UserName, n.user(user))
	putStr(attrs, a.UserID, n.user(userKey))
	putStr(attrs, a.ClientAddress, clientIP(ip))
	putStr(attrs, a.Workload, workload)
	if user != "" {
		attrs.PutStr(a.ActorType, "user")
	}
	sp.write(n, attrs, operation)
	if operation == "New-InboxRule" || operation == "Set-InboxRule" {
		if domains := externalForwarding(params, n.internalDomains, domainOf(user), org); len(domains) > 0 {
			s := attrs.PutEmptySlice(a.MailboxRuleExternalDomains)
			for _, d := range domains {
				s.AppendEmpty().SetStr(d)
			}
			attrs.PutBool(a.MailboxRuleForwardsExternal, true)
		}
	}
	return typ, nil
}

// forwardingParameters are the inbox rule parameters that send a message on to other recipients.
var forwardingParameters = map[string]bool{"ForwardTo": true, "RedirectTo": true, "ForwardAsAttachmentTo": true}

// externalForwarding lists, sorted and once each, the domains an inbox rule's forwarding parameters
// send mail to that are neither the user's, nor the organisation's (OrganizationName, e.g.
// contoso.onmicrosoft.com), nor one of the configured `internal_domains`. Recipients named without an
// address (a mailbox of the organisation) are internal. Another accepted domain of the organisation
// that is not configured counts as external: the record does not list them.
func externalForwarding(params pcommon.Value, configured []string, internal ...string) []string {
	list, ok := sliceOf(params)
	if !ok {
		return nil
	}
	var out []string
	for i := 0; i < list.Len(); i++ {
		p, ok := mapOf(list.At(i))
		if !ok || !forwardingParameters[str(get(p, "Name"))] {
			continue
		}
		for _, r := range strings.FieldsFunc(str(get(p, "Value")), func(c rune) bool { return c == ';' || c == ',' }) {
			d := domainOf(r)
			if d == "" || slices.Contains(internal, d) || slices.Contains(configured, d) || slices.Contains(out, d) {
				continue
			}
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// domainOf is the lower-cased domain of an address ("smtp:Eve@Evil.example" → evil.example), "" for none.
func domainOf(addr string) string {
	_, d, ok := strings.Cut(strings.Trim(strings.TrimSpace(addr), "<>[]\"'"), "@")
	if !ok {
		return ""
	}
	return strings.ToLower(strings.Trim(d, " <>[]\"'."))
}

// clientIP drops the port Exchange appends to ClientIP ("203.0.113.7:49152", "[2001:db8::1]:443").
func clientIP(v string) string {
	if strings.HasPrefix(v, "[") {
		if end := strings.Index(v, "]"); end > 0 {
			return v[1:end]
		}
	}
	if host, port, ok := strings.Cut(v, ":"); ok && !strings.Contains(port, ":") {
		return host
	}
	return v
}

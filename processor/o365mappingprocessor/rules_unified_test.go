package o365mappingprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// inboxRule is the sample New-InboxRule record (testdata/graph/unified_audit_inbox_rule.json) with
// its id, operation, time and parameters set.
func inboxRule(tb testing.TB, id, operation string, at time.Duration, params ...map[string]any) string {
	fields := map[string]any{"Id": id, "Operation": operation, "CreationTime": t0.Add(at).UTC().Format("2006-01-02T15:04:05")}
	if params != nil {
		list := []any{map[string]any{"Name": "Name", "Value": "rule"}}
		for _, p := range params {
			list = append(list, p)
		}
		fields["Parameters"] = list
	}
	return edit(tb, sample(tb, "unified_audit_inbox_rule"), fields)
}

func exchangeAudit(objs ...string) batch {
	return batch{dataset: a.DatasetAuditExchange, objects: objs}
}

func param(name, value string) map[string]any { return map[string]any{"Name": name, "Value": value} }

// The common schema is normalized: user, client IP (without Exchange's port), operation, workload,
// result; an inbox rule forwarding to another domain is marked with the domains.
func TestNormalizeUnifiedAudit(t *testing.T) {
	p, sink, _ := newTestProcessor(t, defaultConfig())
	require.NoError(t, p.ConsumeLogs(context.Background(), exchangeAudit(sample(t, "unified_audit_inbox_rule")).logs(t)))
	lr := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	got := lr.Attributes().AsRaw()
	require.Equal(t, "unified_audit.exchange.new_inbox_rule", got[a.EventType])
	require.Equal(t, a.LogTypeUnifiedAudit, got[a.LogType])
	require.Equal(t, "New-InboxRule", got[a.Activity])
	require.Equal(t, "adele@contoso.com", got[a.UserName])
	require.Equal(t, "203.0.113.7", got[a.ClientAddress])
	require.Equal(t, "Exchange", got[a.Workload])
	require.Equal(t, a.ResultSuccess, got[a.Result])
	require.Equal(t, []any{"evil.example"}, got[a.MailboxRuleExternalDomains])
	require.Equal(t, true, got[a.MailboxRuleForwardsExternal])
}

func TestRuleMailboxForwardingExternal(t *testing.T) {
	const user = "adele@contoso.com"
	runRuleCases(t, "mailbox_forwarding_external", []ruleCase{
		{name: "New-InboxRule forwarding to another domain fires", want: 1, ids: []string{"r1"}, ents: map[string]string{a.UserName: user},
			batches: func(t *testing.T) []batch {
				return []batch{exchangeAudit(inboxRule(t, "r1", "New-InboxRule", 0, param("ForwardTo", "eve@evil.example")))}
			}},
		{name: "Set-InboxRule redirecting to another domain fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{exchangeAudit(inboxRule(t, "r1", "Set-InboxRule", 0, param("RedirectTo", "smtp:Eve@Evil.Example")))}
			}},
		{name: "forwarding as attachment among internal recipients fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{exchangeAudit(inboxRule(t, "r1", "New-InboxRule", 0,
					param("ForwardAsAttachmentTo", "Megan Bowen;bob@contoso.com;eve@evil.example")))}
			}},
		{name: "a rule and its edit within the suppression are one incident", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{exchangeAudit(inboxRule(t, "r1", "New-InboxRule", 0, param("ForwardTo", "eve@evil.example")),
					inboxRule(t, "r2", "Set-InboxRule", 10*time.Minute, param("ForwardTo", "eve@evil.example")))}
			}},
		{name: "forwarding inside the user's domain does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{exchangeAudit(inboxRule(t, "r1", "New-InboxRule", 0, param("ForwardTo", "bob@contoso.com")))}
			}},
		{name: "forwarding to the organisation's onmicrosoft domain does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{exchangeAudit(inboxRule(t, "r1", "New-InboxRule", 0, param("RedirectTo", "bob@contoso.onmicrosoft.com")))}
			}},
		{name: "a mailbox named without an address does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{exchangeAudit(inboxRule(t, "r1", "New-InboxRule", 0, param("ForwardTo", "Megan Bowen")))}
			}},
		{name: "a rule that moves mail, without forwarding, does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{exchangeAudit(inboxRule(t, "r1", "New-InboxRule", 0, param("MoveToFolder", "eve@evil.example")))}
			}},
		{name: "another operation with a ForwardTo parameter does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{exchangeAudit(inboxRule(t, "r1", "Set-Mailbox", 0, param("ForwardTo", "eve@evil.example")))}
			}},
	})
}

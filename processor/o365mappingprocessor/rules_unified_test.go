package o365mappingprocessor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"

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

func sharePointAudit(objs ...string) batch {
	return batch{dataset: a.DatasetAuditSharePoint, objects: objs}
}

// download is the sample FileDownloaded record (testdata/graph/unified_audit_file_downloaded.json) of
// user, for file n of the Finance site, with its id, operation and time set.
func download(tb testing.TB, id, user, operation string, n int, at time.Duration) string {
	name := fmt.Sprintf("Report %03d.xlsx", n)
	return edit(tb, sample(tb, "unified_audit_file_downloaded"), map[string]any{
		"Id": id, "UserId": user, "Operation": operation, "CreationTime": t0.Add(at).UTC().Format("2006-01-02T15:04:05"),
		"ObjectId": "https://contoso.sharepoint.com/sites/Finance/Shared Documents/" + name, "SourceFileName": name,
	})
}

// downloads are count downloads by user of files first, first+1, …, one every step from start.
func downloads(tb testing.TB, user, operation string, first, count int, start, step time.Duration) []string {
	out := make([]string, 0, count)
	for i := range count {
		out = append(out, download(tb, fmt.Sprintf("%s-%s-%d", user, operation, first+i), user, operation, first+i, start+time.Duration(i)*step))
	}
	return out
}

// The SharePoint and OneDrive schemas: the object and its site, file name, folder and extension, item
// type, event source and user agent; metadata only.
func TestNormalizeSharePointFileOperation(t *testing.T) {
	p, sink, _ := newTestProcessor(t, defaultConfig())
	require.NoError(t, p.ConsumeLogs(context.Background(), sharePointAudit(sample(t, "unified_audit_file_downloaded")).logs(t)))
	got := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().AsRaw()
	require.Equal(t, "unified_audit.share_point.file_downloaded", got[a.EventType])
	require.Equal(t, "FileDownloaded", got[a.Activity])
	require.Equal(t, "adele@contoso.com", got[a.UserName])
	require.Equal(t, "https://contoso.sharepoint.com/sites/Finance/Shared Documents/Budget 2026.xlsx", got[a.ObjectID])
	require.Equal(t, "https://contoso.sharepoint.com/sites/Finance/", got[a.SharePointSiteURL])
	require.Equal(t, "Budget 2026.xlsx", got[a.FileName])
	require.Equal(t, "Shared Documents", got[a.FileDirectory])
	require.Equal(t, "xlsx", got[a.FileExtension])
	require.Equal(t, "File", got[a.SharePointItemType])
	require.Equal(t, "SharePoint", got[a.SharePointEventSrc])
	require.Contains(t, got[a.UserAgentOriginal], "Edg/122.0.0.0")
	require.NotContains(t, got, a.SharingAnonymousLink)
}

// With pseudonymization the URLs (a OneDrive URL names its owner) are pseudonyms, equal for equal
// URLs, and the file name and folder are not written.
func TestNormalizeSharePointPseudonymized(t *testing.T) {
	cfg := defaultConfig()
	cfg.Pseudonymize = configoptional.Some(PseudonymizeConfig{Key: "0123456789abcdef0123456789abcdef"})
	p, sink, _ := newTestProcessor(t, cfg)
	obj := sample(t, "unified_audit_anonymous_link")
	require.NoError(t, p.ConsumeLogs(context.Background(), sharePointAudit(obj, edit(t, obj, map[string]any{"Id": "other"})).logs(t)))
	lrs := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	first, second := lrs.At(0).Attributes().AsRaw(), lrs.At(1).Attributes().AsRaw()
	require.Len(t, first[a.ObjectID], 32)
	require.Equal(t, first[a.ObjectID], second[a.ObjectID])
	require.NotContains(t, first, a.FileName)
	require.NotContains(t, first, a.FileDirectory)
	body := lrs.At(0).Body().Map().AsRaw()
	for _, field := range []string{"ObjectId", "SiteUrl", "SourceFileName", "UserId"} {
		require.NotContains(t, body[field], "adele", field)
	}
}

func TestRuleMassFileDownload(t *testing.T) {
	const user, other = "adele@contoso.com", "megan@contoso.com"
	runRuleCases(t, "mass_file_download", []ruleCase{
		{name: "50 different files downloaded in 10 minutes fire", want: 1, ents: map[string]string{a.UserName: user},
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(downloads(t, user, "FileDownloaded", 0, 50, 0, 12*time.Second)...)}
			}},
		{name: "a library synced to a computer fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(downloads(t, user, "FileSyncDownloadedFull", 0, 60, 0, 2*time.Second)...)}
			}},
		{name: "downloads and sync of one user add up", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(append(downloads(t, user, "FileDownloaded", 0, 25, 0, 10*time.Second),
					downloads(t, user, "FileSyncDownloadedFull", 25, 25, 5*time.Minute, 5*time.Second)...)...)}
			}},
		{name: "OneDrive downloads fire", want: 1,
			batches: func(t *testing.T) []batch {
				objs := downloads(t, user, "FileDownloaded", 0, 50, 0, 10*time.Second)
				for i, o := range objs {
					objs[i] = edit(t, o, map[string]any{"Workload": "OneDrive"})
				}
				return []batch{sharePointAudit(objs...)}
			}},
		{name: "49 different files do not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(downloads(t, user, "FileDownloaded", 0, 49, 0, 10*time.Second)...)}
			}},
		{name: "one file downloaded 60 times does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				objs := downloads(t, user, "FileDownloaded", 0, 60, 0, 10*time.Second)
				for i, o := range objs {
					objs[i] = edit(t, o, map[string]any{"ObjectId": "https://contoso.sharepoint.com/sites/Finance/Shared Documents/Budget 2026.xlsx"})
				}
				return []batch{sharePointAudit(objs...)}
			}},
		{name: "50 files over two hours do not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(downloads(t, user, "FileDownloaded", 0, 50, 0, 150*time.Second)...)}
			}},
		{name: "two users downloading 30 each do not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(append(downloads(t, user, "FileDownloaded", 0, 30, 0, 10*time.Second),
					downloads(t, other, "FileDownloaded", 30, 30, 0, 10*time.Second)...)...)}
			}},
		{name: "files viewed or changed by sync, not downloaded, do not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(append(downloads(t, user, "FileAccessed", 0, 30, 0, 10*time.Second),
					downloads(t, user, "FileSyncDownloadedPartial", 30, 30, 0, 10*time.Second)...)...)}
			}},
	})
}

// anonymousLink is the sample AnonymousLinkCreated record (testdata/graph/unified_audit_anonymous_link.json)
// with its id, operation and time, and fields, set.
func anonymousLink(tb testing.TB, id, operation string, at time.Duration, fields map[string]any) string {
	set := map[string]any{"Id": id, "Operation": operation, "CreationTime": t0.Add(at).UTC().Format("2006-01-02T15:04:05")}
	for k, v := range fields {
		set[k] = v
	}
	return edit(tb, sample(tb, "unified_audit_anonymous_link"), set)
}

func TestRuleAnonymousLinkCreated(t *testing.T) {
	const user = "adele@contoso.com"
	const linkGroup = "SharingLinks.a1c3e5f7-2b4d-4f6a-8c0e-3d5f7a9b1c2e.AnonymousEdit.5d2f1c3b-7a9e-4b6d-8f0a-2c4e6a8b0d1f"
	runRuleCases(t, "anonymous_link_created", []ruleCase{
		{name: "AnonymousLinkCreated fires", want: 1, ids: []string{"s1"}, ents: map[string]string{a.UserName: user},
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(anonymousLink(t, "s1", "AnonymousLinkCreated", 0, nil))}
			}},
		{name: "AnonymousLinkUpdated fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(anonymousLink(t, "s1", "AnonymousLinkUpdated", 0, nil))}
			}},
		{name: "SharingSet granting an Anyone link's group fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(anonymousLink(t, "s1", "SharingSet", 0,
					map[string]any{"TargetUserOrGroupType": "SharePointGroup", "TargetUserOrGroupName": linkGroup}))}
			}},
		{name: "the link and its SharingSet are one incident", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(anonymousLink(t, "s1", "AnonymousLinkCreated", 0, nil),
					anonymousLink(t, "s2", "SharingSet", time.Second, map[string]any{"TargetUserOrGroupType": "SharePointGroup", "TargetUserOrGroupName": linkGroup}))}
			}},
		{name: "links to two files are two incidents", want: 2,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(anonymousLink(t, "s1", "AnonymousLinkCreated", 0, nil),
					anonymousLink(t, "s2", "AnonymousLinkCreated", time.Minute, map[string]any{"ObjectId": "https://contoso-my.sharepoint.com/personal/adele_contoso_com/Documents/other.docx"}))}
			}},
		{name: "someone using an Anyone link does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(anonymousLink(t, "s1", "AnonymousLinkUsed", 0, map[string]any{"UserId": "urn:spo:anon#5f1e0c2b"}))}
			}},
		{name: "a company-wide link does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(anonymousLink(t, "s1", "CompanyLinkCreated", 0, nil))}
			}},
		{name: "SharingSet with a member or a company link's group does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(
					anonymousLink(t, "s1", "SharingSet", 0, map[string]any{"TargetUserOrGroupType": "Member", "TargetUserOrGroupName": "megan@contoso.com"}),
					anonymousLink(t, "s2", "SharingSet", time.Minute, map[string]any{"TargetUserOrGroupType": "SharePointGroup",
						"TargetUserOrGroupName": "SharingLinks.a1c3e5f7-2b4d-4f6a-8c0e-3d5f7a9b1c2e.OrganizationView.0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"}))}
			}},
		{name: "removing an Anyone link does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{sharePointAudit(anonymousLink(t, "s1", "AnonymousLinkRemoved", 0, nil))}
			}},
	})
}

// Another accepted domain of the organisation is outside it unless `internal_domains` lists it
// (compared without case); the user's domain and OrganizationName stay internal without being listed.
func TestForwardingToConfiguredInternalDomains(t *testing.T) {
	rule := func(t *testing.T, id, to string) string {
		return inboxRule(t, id, "New-InboxRule", 0, param("ForwardTo", to))
	}
	domains := func(t *testing.T, internal []string, to string) any {
		cfg := defaultConfig()
		cfg.InternalDomains = internal
		p, sink, _ := newTestProcessor(t, cfg)
		require.NoError(t, p.ConsumeLogs(context.Background(), exchangeAudit(rule(t, "r1", to)).logs(t)))
		return sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().AsRaw()[a.MailboxRuleExternalDomains]
	}
	require.Equal(t, []any{"fabrikam.com"}, domains(t, nil, "bob@fabrikam.com"), "not configured: external")
	require.Nil(t, domains(t, []string{"Fabrikam.COM"}, "bob@fabrikam.com"), "configured: internal")
	require.Equal(t, []any{"evil.example"}, domains(t, []string{"fabrikam.com"}, "bob@fabrikam.com;eve@evil.example"))
	require.Nil(t, domains(t, []string{"fabrikam.com"}, "bob@contoso.com"), "the user's domain stays internal")
	require.Equal(t, []any{"sub.fabrikam.com"}, domains(t, []string{"fabrikam.com"}, "bob@sub.fabrikam.com"), "a subdomain is another domain")
}

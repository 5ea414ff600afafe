package graphsim

import (
	"fmt"
	"strings"
	"time"
)

// Unified audit records of the Management Activity API, in the shapes of its schema
// (learn.microsoft.com/office/office-365-management-api/office-365-management-activity-api-schema):
// the common schema, Exchange admin (an inbox rule cmdlet), and SharePoint base, file operations and
// sharing. CreationTime is UTC without a zone, as the API writes it.

// Record types of the common schema's AuditLogRecordType.
const (
	recordTypeExchangeAdmin    = 1
	recordTypeSharePointFileOp = 6
	recordTypeSharePointShare  = 14
)

// auditTime renders t as CreationTime ("2015-06-29T20:03:19").
func auditTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }

// puid is the user's Passport unique id, which UserKey carries: 16 hex digits derived from the user id.
func (u simUser) puid() string {
	return fmt.Sprintf("1003%012X", mix(hashString(u.id), 0x9e1d)&0xffffffffffff)
}

// auditCommon is the common schema of a record by u from ip.
func auditCommon(td *tenantData, id string, recordType int, workload, operation string, u simUser, at time.Time, ip, userKey string) map[string]any {
	return map[string]any{
		"CreationTime": auditTime(at), "Id": id, "Operation": operation, "OrganizationId": td.cfg.ID,
		"RecordType": recordType, "ResultStatus": "Succeeded", "UserKey": userKey, "UserType": 0, "Version": 1,
		"Workload": workload, "ClientIP": ip, "UserId": u.upn,
	}
}

// newInboxRule is the Exchange admin record of u creating an inbox rule with params (name, value pairs).
func newInboxRule(td *tenantData, id string, u simUser, at time.Time, ip, rule string, params ...string) map[string]any {
	r := auditCommon(td, id, recordTypeExchangeAdmin, "Exchange", "New-InboxRule", u, at, ip+":"+fmt.Sprint(49152+mix(hashString(id), 1)%16000), u.puid())
	r["ResultStatus"] = "True"
	r["ObjectId"] = u.upn + `\` + rule
	r["AppId"] = "00000002-0000-0ff1-ce00-000000000000"
	r["ExternalAccess"] = false
	r["OrganizationName"] = td.domain
	r["OriginatingServer"] = "AM0PR01MB1234 (15.20.7000.000)"
	list := []map[string]any{{"Name": "AlwaysDeleteOutlookRulesBlob", "Value": "False"}, {"Name": "Force", "Value": "False"}, {"Name": "Name", "Value": rule}}
	for i := 0; i+1 < len(params); i += 2 {
		list = append(list, map[string]any{"Name": params[i], "Value": params[i+1]})
	}
	r["Parameters"] = list
	r["SessionId"] = guid(hashString(id), 2)
	return r
}

// spItem is a file of a SharePoint site or OneDrive: the site's URL (ending in /), its folder relative
// to the site, and its name.
type spItem struct {
	site, folder, name string
}

func (it spItem) url() string { return it.site + it.folder + "/" + it.name }

// teamSite and oneDrive are the URLs of a tenant's team site and of a user's OneDrive.
func teamSite(td *tenantData, site string) string {
	return "https://" + lower(td.cfg.Name) + ".sharepoint.com/sites/" + site + "/"
}

func oneDrive(td *tenantData, u simUser) string {
	return "https://" + lower(td.cfg.Name) + "-my.sharepoint.com/personal/" + strings.NewReplacer("@", "_", ".", "_").Replace(u.upn) + "/"
}

// Browser and OneDrive sync client user agents (the sync client reports itself as SkyDriveSync).
const (
	userAgentEdge     = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.0.0"
	userAgentSyncDesk = "Microsoft SkyDriveSync 24.020.0128.0003 ship; Windows NT 10.0 (19045)"
)

// sharePointRecord is a SharePoint base schema record of u on item: file operations (RecordType 6) and
// sharing operations (RecordType 14) carry the same fields.
func sharePointRecord(td *tenantData, id string, recordType int, operation string, u simUser, at time.Time, ip, agent string, it spItem) map[string]any {
	workload := "SharePoint"
	if strings.Contains(it.site, "-my.sharepoint.com/") {
		workload = "OneDrive"
	}
	h := hashString(it.url())
	r := auditCommon(td, id, recordType, workload, operation, u, at, ip, "i:0h.f|membership|"+strings.ToLower(u.puid())+"@live.com")
	ext := ""
	if i := strings.LastIndexByte(it.name, '.'); i >= 0 {
		ext = it.name[i+1:]
	}
	for k, v := range map[string]any{
		"ObjectId": it.url(), "CorrelationId": guid(hashString(id), 3), "EventSource": "SharePoint", "ItemType": "File",
		"ListId": guid(hashString(it.site+it.folder), 4), "ListItemUniqueId": guid(h, 5), "Site": guid(hashString(it.site), 6),
		"UserAgent": agent, "WebId": guid(hashString(it.site), 7), "SourceFileExtension": ext, "SiteUrl": it.site,
		"SourceFileName": it.name, "SourceRelativeUrl": it.folder,
	} {
		r[k] = v
	}
	return r
}

// anyoneLinkGroup is the SharePoint group behind an "Anyone" view link to it, which the SharingSet of
// the link names: SharingLinks.<item id>.AnonymousView.<link id>.
func anyoneLinkGroup(it spItem, link string) string {
	return "SharingLinks." + guid(hashString(it.url()), 5) + ".AnonymousView." + link
}

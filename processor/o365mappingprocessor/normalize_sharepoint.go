package o365mappingprocessor

import (
	"regexp"

	"go.opentelemetry.io/collector/pdata/pcommon"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// sharePointFields are the fields of the SharePoint and OneDrive schemas of the Management Activity API
// (learn.microsoft.com/office/office-365-management-api/office-365-management-activity-api-schema:
// "SharePoint Base schema", "SharePoint file operations", "SharePoint Sharing schema") that the
// normalizer writes: where the object is and what it is, never its content.
type sharePointFields struct {
	objectID, siteURL, fileName, extension, directory string
	itemType, eventSource, userAgent                  string
	targetType, targetName                            string
	// identifiers are the kept body's fields that name a user or a user's OneDrive
	// (https://contoso-my.sharepoint.com/personal/adele_contoso_com/…): pseudonymized with the user.
	identifiers []pcommon.Value
}

// read takes k when it is one of the fields, and reports whether it was.
func (f *sharePointFields) read(k string, v pcommon.Value) bool {
	dst, identifier := f.field(k)
	if dst == nil {
		return false
	}
	*dst = str(v)
	if identifier {
		f.identifiers = append(f.identifiers, v)
	}
	return true
}

// field is where the value of field k goes (nil: not one of the fields), and whether it is an identifier.
func (f *sharePointFields) field(k string) (dst *string, identifier bool) {
	switch k {
	case "ObjectId":
		return &f.objectID, true
	case "SiteUrl":
		return &f.siteURL, true
	case "SourceFileName":
		return &f.fileName, true
	case "SourceRelativeUrl":
		return &f.directory, true
	case "TargetUserOrGroupName":
		return &f.targetName, true
	case "SourceFileExtension":
		return &f.extension, false
	case "ItemType":
		return &f.itemType, false
	case "EventSource":
		return &f.eventSource, false
	case "UserAgent":
		return &f.userAgent, false
	case "TargetUserOrGroupType":
		return &f.targetType, false
	}
	return nil, false
}

// anonymousLinkGroup is the SharePoint group behind an "Anyone" link, which a SharingSet record names as
// its target: SharingLinks.<item id>.AnonymousView.<link id> (or AnonymousEdit).
var anonymousLinkGroup = regexp.MustCompile(`^SharingLinks\.[^.]+\.Anonymous(View|Edit)\.`)

// anonymousLinkCreated reports whether a record creates or widens an "Anyone" link: AnonymousLinkCreated,
// AnonymousLinkUpdated (its type or expiry changed), or the SharingSet that grants the link's group
// access. AnonymousLinkUsed is a use of the link by someone without an identity, not its creation.
func (f *sharePointFields) anonymousLinkCreated(operation string) bool {
	switch operation {
	case "AnonymousLinkCreated", "AnonymousLinkUpdated":
		return true
	case "SharingSet":
		return anonymousLinkGroup.MatchString(f.targetName)
	}
	return false
}

// write adds the normalized attributes. With pseudonymization the object and site URLs are pseudonyms
// (a OneDrive URL names its owner), so distinct files still count as distinct, and the file name and
// folder, free text that may name people, are not written.
func (f *sharePointFields) write(n *normalizer, attrs pcommon.Map, operation string) {
	putStr(attrs, a.ObjectID, n.user(clip(f.objectID)))
	putStr(attrs, a.SharePointSiteURL, n.user(clip(f.siteURL)))
	if n.pseudo == nil {
		putStr(attrs, a.FileName, clip(f.fileName))
		putStr(attrs, a.FileDirectory, clip(f.directory))
	}
	putStr(attrs, a.FileExtension, f.extension)
	putStr(attrs, a.SharePointItemType, f.itemType)
	putStr(attrs, a.SharePointEventSrc, f.eventSource)
	putStr(attrs, a.UserAgentOriginal, clip(f.userAgent))
	putStr(attrs, a.SharingTargetType, f.targetType)
	if f.anonymousLinkCreated(operation) {
		attrs.PutBool(a.SharingAnonymousLink, true)
	}
	n.pseudonymizeBody(f.identifiers...)
}

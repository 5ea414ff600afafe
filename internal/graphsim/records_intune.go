package graphsim

import (
	"fmt"
	"strings"
	"time"
)

// Intune audit events (GET /v1.0/deviceManagement/auditEvents, microsoft.graph.auditEvent): an event
// stream on activityDateTime. Shape: the v1.0 reference's "List auditEvents" example without the
// actor's and resources' `type`, which Microsoft's current model no longer has (auditActorType and
// auditResourceType replace them); values as Intune writes them (an IT pro acting in the Intune admin
// center on a device, policy or app).

// auditEvent is the v1.0 microsoft.graph.auditEvent resource.
type auditEvent struct {
	ODataType             string          `json:"@odata.type"`
	ID                    string          `json:"id"`
	DisplayName           string          `json:"displayName"`
	ComponentName         string          `json:"componentName"`
	Actor                 auditActor      `json:"actor"`
	Activity              string          `json:"activity"`
	ActivityDateTime      string          `json:"activityDateTime"`
	ActivityType          string          `json:"activityType"`
	ActivityOperationType string          `json:"activityOperationType"`
	ActivityResult        string          `json:"activityResult"`
	CorrelationID         string          `json:"correlationId"`
	Resources             []auditResource `json:"resources"`
	Category              string          `json:"category"`
}

type auditActor struct {
	ODataType              string   `json:"@odata.type"`
	AuditActorType         string   `json:"auditActorType"`
	UserPermissions        []string `json:"userPermissions"`
	ApplicationID          string   `json:"applicationId"`
	ApplicationDisplayName string   `json:"applicationDisplayName"`
	UserPrincipalName      *string  `json:"userPrincipalName"`
	ServicePrincipalName   *string  `json:"servicePrincipalName"`
	IPAddress              *string  `json:"ipAddress"`
	UserID                 *string  `json:"userId"`
}

type auditResource struct {
	ODataType          string          `json:"@odata.type"`
	DisplayName        string          `json:"displayName"`
	ModifiedProperties []auditProperty `json:"modifiedProperties"`
	AuditResourceType  string          `json:"auditResourceType"`
	ResourceID         string          `json:"resourceId"`
}

type auditProperty struct {
	ODataType   string `json:"@odata.type"`
	DisplayName string `json:"displayName"`
	OldValue    string `json:"oldValue"`
	NewValue    string `json:"newValue"`
}

// intuneTemplate is one kind of Intune change: its activity, component and category, the operation and
// the resource it acts on (a %04d in the name numbers a device), and the property it changes ("" = none).
type intuneTemplate struct {
	activity, component, category, operation, resourceType, resourceName string
	property, oldValue, newValue                                         string
}

var intuneTemplates = []intuneTemplate{
	{"Patch DeviceConfiguration", "DeviceConfiguration", "DeviceConfiguration", "Patch", "DeviceConfiguration", "Windows 10 - BitLocker",
		"RequireDeviceEncryption", "True", "False"},
	{"Create DeviceConfiguration", "DeviceConfiguration", "DeviceConfiguration", "Create", "DeviceConfiguration", "iOS - Restrictions", "", "", ""},
	{"Patch DeviceCompliancePolicy", "DeviceCompliance", "Compliance", "Patch", "DeviceCompliancePolicy", "Windows - Compliance baseline",
		"PasswordRequired", "True", "False"},
	{"wipe ManagedDevice", "ManagedDevices", "Device", "Action", "ManagedDevice", "DESKTOP-%04d", "", "", ""},
	{"Delete ManagedDevice", "ManagedDevices", "Device", "Delete", "ManagedDevice", "IPHONE-%04d", "", "", ""},
	{"Assign MobileApp", "MobileApps", "Application", "Assign", "MobileApp", "Company Portal", "", "", ""},
	{"Create RoleAssignment", "RoleBasedAccessControl", "Role", "Create", "RoleAssignment", "Help Desk Operator", "", "", ""},
	{"Patch DeviceEnrollmentConfiguration", "Enrollment", "Enrollment", "Patch", "DeviceEnrollmentConfiguration", "All users and all devices",
		"PlatformRestrictions", "Allowed", "Blocked"},
}

// intuneAdminCenter is the first-party app Intune's admin center acts through.
const intuneAdminCenter = "5926fc8e-304e-4f59-8bed-58ca97cc39a4"

func buildIntuneAudit(s *stream, i int64) auditEvent {
	td := s.tenant
	h := mix(s.seed, uint64(i)^0x17e0)
	t := intuneTemplates[h%uint64(len(intuneTemplates))]
	u := td.users[(h>>8)%uint64(len(td.users))]
	name := t.resourceName
	if strings.Contains(name, "%04d") {
		name = fmt.Sprintf(name, (h>>20)%10000)
	}
	upn, uid := u.upn, u.id
	ip := fmt.Sprintf("%d.%d.%d.%d", 20+(h>>28)%180, (h>>36)%256, (h>>44)%256, 1+(h>>52)%254)
	res := auditResource{ODataType: "microsoft.graph.auditResource", DisplayName: name,
		AuditResourceType: t.resourceType, ResourceID: guid(s.seed^0x17e1, (h>>16)%4096), ModifiedProperties: []auditProperty{}}
	if t.property != "" {
		res.ModifiedProperties = append(res.ModifiedProperties, auditProperty{ODataType: "microsoft.graph.auditProperty",
			DisplayName: t.property, OldValue: t.oldValue, NewValue: t.newValue})
	}
	result := "Success"
	if (h>>40)%20 == 0 {
		result = "Failure"
	}
	return auditEvent{
		ODataType: "#microsoft.graph.auditEvent", ID: guid(s.seed, uint64(i)), DisplayName: t.activity, ComponentName: t.component,
		Actor: auditActor{ODataType: "microsoft.graph.auditActor", AuditActorType: "ItPro", UserPermissions: []string{"*"},
			ApplicationID: intuneAdminCenter, ApplicationDisplayName: "Microsoft Intune portal extension",
			UserPrincipalName: &upn, IPAddress: &ip, UserID: &uid},
		Activity: t.activity, ActivityDateTime: formatTimeUnit(s.timeAt(i), 100*time.Nanosecond), ActivityType: t.activity,
		ActivityOperationType: t.operation, ActivityResult: result, CorrelationID: guid(s.seed^0xc0e1, uint64(i)),
		Resources: []auditResource{res}, Category: t.category,
	}
}

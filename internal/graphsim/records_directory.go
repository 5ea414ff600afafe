package graphsim

import (
	"encoding/base64"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Snapshot generators. The four collections are consistent with each other and with the event streams:
//
//   - role assignments and eligibility schedules name users of the tenant's pool and built-in role
//     definitions (real template ids); the tenant's first user is a Global Administrator and the second
//     a break-glass Global Administrator;
//   - userRegistrationDetails says isAdmin for exactly the users holding an active role assignment (as
//     generated), and a deterministic few of them — always the break-glass account — are not registered
//     for MFA, so a "privileged role without MFA" rule has something to find;
//   - conditional access policies include the four policies sign-ins report in
//     appliedConditionalAccessPolicies (same ids and names), in a mix of states, and exclude the
//     break-glass account from the MFA policy.
//
// Changes made with SetItem / RemoveItem affect only the collection changed.

type roleDefinition struct {
	id, name, description string
	privileged            bool
	actions               []string
	weight                int // relative frequency among generated assignments
}

// roleDefinitions are built-in Entra ID roles with their real template ids.
var roleDefinitions = []roleDefinition{
	{"62e90394-69f5-4237-9190-012177145e10", "Global Administrator", "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.", true,
		[]string{"microsoft.directory/users/allProperties/allTasks", "microsoft.directory/groups/allProperties/allTasks"}, 2},
	{"e8611ab8-c189-46e8-94e1-60213ab1f814", "Privileged Role Administrator", "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged Identity Management.", true,
		[]string{"microsoft.directory/roleAssignments/allProperties/allTasks", "microsoft.directory/privilegedIdentityManagement/allProperties/allTasks"}, 1},
	{"194ae4cb-b126-40b2-bd5b-6091b380977d", "Security Administrator", "Can read security information and reports, and manage configuration in Microsoft Entra ID and Office 365.", true,
		[]string{"microsoft.directory/identityProtection/allProperties/allTasks", "microsoft.directory/conditionalAccessPolicies/allProperties/allTasks"}, 2},
	{"fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator", "Can manage all aspects of users and groups, including resetting passwords for limited admins.", true,
		[]string{"microsoft.directory/users/create", "microsoft.directory/users/password/update"}, 3},
	{"29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator", "Can manage all aspects of the Exchange product.", true,
		[]string{"microsoft.office365.exchange/allEntities/basic/allTasks"}, 2},
	{"f28a1f50-f6e7-4571-818b-6a12f2af6b6c", "SharePoint Administrator", "Can manage all aspects of the SharePoint service.", false,
		[]string{"microsoft.office365.sharePoint/allEntities/allTasks"}, 2},
	{"b1be1c3e-b65d-4f19-8427-f6fa0d97feb9", "Conditional Access Administrator", "Can manage Conditional Access capabilities.", true,
		[]string{"microsoft.directory/conditionalAccessPolicies/create", "microsoft.directory/conditionalAccessPolicies/basic/update"}, 1},
	{"9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "Application Administrator", "Can create and manage all aspects of app registrations and enterprise apps.", true,
		[]string{"microsoft.directory/applications/create", "microsoft.directory/servicePrincipals/appRoleAssignedTo/update"}, 2},
	{"729827e3-9c14-49f7-bb1b-9608f156bbb8", "Helpdesk Administrator", "Can reset passwords for non-administrators and Helpdesk Administrators.", true,
		[]string{"microsoft.directory/users/password/update", "microsoft.directory/users/invalidateAllRefreshTokens"}, 4},
	{"5d6b6bb7-de71-4623-b4af-96380a352509", "Security Reader", "Can read security information and reports in Microsoft Entra ID and Office 365.", false,
		[]string{"microsoft.directory/identityProtection/allProperties/read"}, 3},
	{"f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader", "Can read everything that a Global Administrator can, but not update anything.", false,
		[]string{"microsoft.directory/users/allProperties/read", "microsoft.directory/groups/allProperties/read"}, 3},
	{"4a5d8f65-41da-4de4-8968-e035b65339cf", "Reports Reader", "Can read sign-in and audit reports.", false,
		[]string{"microsoft.directory/auditLogs/allProperties/read", "microsoft.directory/signInReports/allProperties/read"}, 3},
	{"b0f54661-2d74-4c50-afa3-1ec803f12efe", "Billing Administrator", "Can perform common billing related tasks like updating payment information.", false,
		[]string{"microsoft.commerce.billing/allEntities/allProperties/allTasks"}, 1},
}

func privilegedRoles() []roleDefinition {
	var out []roleDefinition
	for _, rd := range roleDefinitions {
		if rd.privileged {
			out = append(out, rd)
		}
	}
	return out
}

// unifiedRoleAssignment is the v1.0 resource without its navigation properties.
type unifiedRoleAssignment struct {
	ID               string  `json:"id"`
	PrincipalID      string  `json:"principalId"`
	RoleDefinitionID string  `json:"roleDefinitionId"`
	DirectoryScopeID string  `json:"directoryScopeId"`
	AppScopeID       *string `json:"appScopeId"`
	Condition        *string `json:"condition"`
}

// principalUser is a user as $expand=principal returns it.
type principalUser struct {
	ODataType         string   `json:"@odata.type"`
	ID                string   `json:"id"`
	DeletedDateTime   *string  `json:"deletedDateTime"`
	AccountEnabled    bool     `json:"accountEnabled"`
	BusinessPhones    []string `json:"businessPhones"`
	DisplayName       string   `json:"displayName"`
	GivenName         string   `json:"givenName"`
	Surname           string   `json:"surname"`
	JobTitle          string   `json:"jobTitle"`
	Mail              string   `json:"mail"`
	MobilePhone       *string  `json:"mobilePhone"`
	OfficeLocation    *string  `json:"officeLocation"`
	PreferredLanguage string   `json:"preferredLanguage"`
	UserPrincipalName string   `json:"userPrincipalName"`
	UserType          string   `json:"userType"`
}

func principalOf(td *tenantData, u simUser) principalUser {
	return principalUser{ODataType: "#microsoft.graph.user", ID: u.id, AccountEnabled: true, BusinessPhones: []string{},
		DisplayName: u.displayName, GivenName: u.given, Surname: u.surname, JobTitle: u.job, Mail: u.upn,
		PreferredLanguage: "en-US", UserPrincipalName: u.upn, UserType: "Member"}
}

type unifiedRoleDefinition struct {
	ID              string                  `json:"id"`
	Description     string                  `json:"description"`
	DisplayName     string                  `json:"displayName"`
	IsBuiltIn       bool                    `json:"isBuiltIn"`
	IsEnabled       bool                    `json:"isEnabled"`
	ResourceScopes  []string                `json:"resourceScopes"`
	TemplateID      string                  `json:"templateId"`
	Version         string                  `json:"version"`
	RolePermissions []unifiedRolePermission `json:"rolePermissions"`
}

type unifiedRolePermission struct {
	AllowedResourceActions  []string `json:"allowedResourceActions"`
	ExcludedResourceActions []string `json:"excludedResourceActions"`
	Condition               *string  `json:"condition"`
}

func roleDefinitionOf(rd roleDefinition) unifiedRoleDefinition {
	return unifiedRoleDefinition{ID: rd.id, Description: rd.description, DisplayName: rd.name, IsBuiltIn: true, IsEnabled: true,
		ResourceScopes: []string{"/"}, TemplateID: rd.id, Version: "1",
		RolePermissions: []unifiedRolePermission{{AllowedResourceActions: rd.actions, ExcludedResourceActions: []string{}}}}
}

// assignmentKey mimics the ids Graph gives directory role assignments: the role definition's and the
// principal's GUID bytes, base64url, then a suffix.
func assignmentKey(roleID, principalID, suffix string) string {
	return guidB64(roleID) + guidB64(principalID) + suffix
}

func guidB64(s string) string {
	u, err := uuid.Parse(s)
	if err != nil {
		return base64.RawURLEncoding.EncodeToString([]byte(s))
	}
	b := u[:]
	// .NET's Guid.ToByteArray order: the first three groups little-endian.
	le := []byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]}
	return base64.RawURLEncoding.EncodeToString(le)
}

type rolePair struct{ role, user int }

// pickRolePairs deterministically draws count distinct (role, user) pairs: weighted roles, users from
// the first adminPool users of the tenant (a few people hold the roles, some several). The first two
// pairs are the tenant's admin and break-glass account as Global Administrators.
func pickRolePairs(td *tenantData, count int, roles []roleDefinition, salt uint64, fixed []rolePair) []rolePair {
	adminPool := min(len(td.users), max(10, count))
	total := 0
	for _, rd := range roles {
		total += max(rd.weight, 1)
	}
	seen := map[rolePair]bool{}
	out := make([]rolePair, 0, count)
	add := func(p rolePair) {
		if len(out) < count && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range fixed {
		add(p)
	}
	for k := uint64(0); len(out) < count && k < uint64(20*count+100); k++ {
		h := mix(td.seed^salt, k)
		w := int(h % uint64(total))
		r := 0
		for ; r < len(roles)-1; r++ {
			if w -= max(roles[r].weight, 1); w < 0 {
				break
			}
		}
		add(rolePair{role: r, user: int((h >> 20) % uint64(adminPool))})
	}
	for u := 0; len(out) < count && u < len(td.users); u++ { // dense: fill in order
		for r := range roles {
			add(rolePair{role: r, user: u})
		}
	}
	return out
}

// activeRolePairs are the generated role assignments of the tenant (count of them).
func activeRolePairs(td *tenantData, count int) []rolePair {
	return pickRolePairs(td, count, roleDefinitions, 0x7a55, []rolePair{{0, 0}, {0, 1}})
}

// breakGlassUser is the pool index of the tenant's break-glass account: a Global Administrator the MFA
// policy exempts, without MFA.
const breakGlassUser = 1

// eligibleRolePairs are the generated PIM eligibilities of the tenant (count of them).
func eligibleRolePairs(td *tenantData, count int) []rolePair {
	return pickRolePairs(td, count, privilegedRoles(), 0xe119, nil)
}

func genRoleAssignments(td *tenantData, count int) []snapItem {
	out := make([]snapItem, 0, count)
	for _, p := range activeRolePairs(td, count) {
		rd, u := roleDefinitions[p.role], td.users[p.user]
		a := unifiedRoleAssignment{ID: assignmentKey(rd.id, u.id, "-1"), PrincipalID: u.id, RoleDefinitionID: rd.id, DirectoryScopeID: "/"}
		out = append(out, snapItem{id: a.ID, raw: mustJSON(a), principalID: u.id, roleDefinitionID: rd.id})
	}
	return out
}

// unifiedRoleEligibilitySchedule is the v1.0 resource without its navigation properties.
type unifiedRoleEligibilitySchedule struct {
	ID               string          `json:"id"`
	PrincipalID      string          `json:"principalId"`
	RoleDefinitionID string          `json:"roleDefinitionId"`
	DirectoryScopeID string          `json:"directoryScopeId"`
	AppScopeID       *string         `json:"appScopeId"`
	CreatedUsing     string          `json:"createdUsing"`
	CreatedDateTime  *string         `json:"createdDateTime"`
	ModifiedDateTime *string         `json:"modifiedDateTime"`
	Status           string          `json:"status"`
	MemberType       string          `json:"memberType"`
	ScheduleInfo     requestSchedule `json:"scheduleInfo"`
}

type requestSchedule struct {
	StartDateTime string            `json:"startDateTime"`
	Recurrence    *string           `json:"recurrence"`
	Expiration    expirationPattern `json:"expiration"`
}

type expirationPattern struct {
	Type        string  `json:"type"`
	EndDateTime *string `json:"endDateTime"`
	Duration    *string `json:"duration"`
}

// genRoleEligibilitySchedules: PIM eligibilities for privileged roles. Timestamps have 3 fractional
// digits; createdDateTime is sometimes null and modifiedDateTime null or 0001-01-01T08:00:00Z, as Graph
// returns them (GRAPH.md).
func genRoleEligibilitySchedules(td *tenantData, count int) []snapItem {
	roles := privilegedRoles()
	out := make([]snapItem, 0, count)
	for k, p := range eligibleRolePairs(td, count) {
		rd, u := roles[p.role], td.users[p.user]
		h := mix(td.seed^0xe11, uint64(k))
		start := td.anchor.Add(-time.Duration(1+h%365*24) * time.Hour).Add(-time.Duration((h>>12)%3_600_000) * time.Millisecond)
		id := assignmentKey(rd.id, u.id, "-1-e")
		s := unifiedRoleEligibilitySchedule{
			ID: id, PrincipalID: u.id, RoleDefinitionID: rd.id, DirectoryScopeID: "/", CreatedUsing: id,
			CreatedDateTime: strPtr(formatTimeUnit(start, time.Millisecond)), Status: "Provisioned", MemberType: "Direct",
			ScheduleInfo: requestSchedule{StartDateTime: formatTimeUnit(start, time.Millisecond),
				Expiration: expirationPattern{Type: "noExpiration"}},
		}
		switch (h >> 40) % 4 {
		case 0:
			s.CreatedDateTime = nil
		case 1:
			s.ModifiedDateTime = strPtr("0001-01-01T08:00:00Z")
		}
		if (h>>44)%3 == 0 {
			end := formatTimeUnit(start.AddDate(1, 0, 0), time.Millisecond)
			s.ScheduleInfo.Expiration = expirationPattern{Type: "afterDateTime", EndDateTime: &end}
		}
		out = append(out, snapItem{id: id, raw: mustJSON(s), principalID: u.id, roleDefinitionID: rd.id})
	}
	return out
}

// conditionalAccessPolicy is the v1.0 resource.
type conditionalAccessPolicy struct {
	ID               string          `json:"id"`
	TemplateID       *string         `json:"templateId"`
	DisplayName      string          `json:"displayName"`
	CreatedDateTime  string          `json:"createdDateTime"`
	ModifiedDateTime *string         `json:"modifiedDateTime"`
	Description      *string         `json:"description"`
	State            string          `json:"state"`
	SessionControls  *caSession      `json:"sessionControls"`
	Conditions       caConditions    `json:"conditions"`
	GrantControls    *caGrantControl `json:"grantControls"`
}

type caConditions struct {
	UserRiskLevels             []string       `json:"userRiskLevels"`
	SignInRiskLevels           []string       `json:"signInRiskLevels"`
	ClientAppTypes             []string       `json:"clientAppTypes"`
	ServicePrincipalRiskLevels []string       `json:"servicePrincipalRiskLevels"`
	InsiderRiskLevels          *string        `json:"insiderRiskLevels"`
	Platforms                  *caPlatforms   `json:"platforms"`
	Devices                    *caDevices     `json:"devices"`
	ClientApplications         *string        `json:"clientApplications"`
	AuthenticationFlows        *string        `json:"authenticationFlows"`
	Locations                  *caLocations   `json:"locations"`
	Applications               caApplications `json:"applications"`
	Users                      caUsers        `json:"users"`
}

type caPlatforms struct {
	IncludePlatforms []string `json:"includePlatforms"`
	ExcludePlatforms []string `json:"excludePlatforms"`
}

type caDevices struct {
	DeviceFilter struct {
		Mode string `json:"mode"`
		Rule string `json:"rule"`
	} `json:"deviceFilter"`
}

type caLocations struct {
	IncludeLocations []string `json:"includeLocations"`
	ExcludeLocations []string `json:"excludeLocations"`
}

type caApplications struct {
	IncludeApplications                         []string `json:"includeApplications"`
	ExcludeApplications                         []string `json:"excludeApplications"`
	IncludeUserActions                          []string `json:"includeUserActions"`
	IncludeAuthenticationContextClassReferences []string `json:"includeAuthenticationContextClassReferences"`
	ApplicationFilter                           *string  `json:"applicationFilter"`
}

type caUsers struct {
	IncludeUsers                 []string `json:"includeUsers"`
	ExcludeUsers                 []string `json:"excludeUsers"`
	IncludeGroups                []string `json:"includeGroups"`
	ExcludeGroups                []string `json:"excludeGroups"`
	IncludeRoles                 []string `json:"includeRoles"`
	ExcludeRoles                 []string `json:"excludeRoles"`
	IncludeGuestsOrExternalUsers *string  `json:"includeGuestsOrExternalUsers"`
	ExcludeGuestsOrExternalUsers *string  `json:"excludeGuestsOrExternalUsers"`
}

type caGrantControl struct {
	Operator                      string   `json:"operator"`
	BuiltInControls               []string `json:"builtInControls"`
	CustomAuthenticationFactors   []string `json:"customAuthenticationFactors"`
	TermsOfUse                    []string `json:"termsOfUse"`
	AuthenticationStrengthContext string   `json:"authenticationStrength@odata.context"`
	AuthenticationStrength        *string  `json:"authenticationStrength"`
}

type caSession struct {
	ApplicationEnforcedRestrictions *string           `json:"applicationEnforcedRestrictions"`
	CloudAppSecurity                *string           `json:"cloudAppSecurity"`
	DisableResilienceDefaults       *bool             `json:"disableResilienceDefaults"`
	PersistentBrowser               *persistentBrowse `json:"persistentBrowser"`
	SignInFrequency                 *signInFrequency  `json:"signInFrequency"`
}

type persistentBrowse struct {
	IsEnabled bool   `json:"isEnabled"`
	Mode      string `json:"mode"`
}

type signInFrequency struct {
	IsEnabled          bool   `json:"isEnabled"`
	Value              int    `json:"value"`
	Type               string `json:"type"`
	AuthenticationType string `json:"authenticationType"`
	FrequencyInterval  string `json:"frequencyInterval"`
}

type caTemplate struct {
	id, name, state string
	build           func(p *conditionalAccessPolicy, td *tenantData)
}

func grant(op string, controls ...string) *caGrantControl {
	return &caGrantControl{Operator: op, BuiltInControls: controls, CustomAuthenticationFactors: []string{}, TermsOfUse: []string{}}
}

// caTemplates: the first four are the policies sign-ins report (caPolicies), in the same order.
var caTemplates = []caTemplate{
	{caPolicies[0].id, caPolicies[0].name, "enabled", func(p *conditionalAccessPolicy, td *tenantData) {
		for _, rd := range privilegedRoles() {
			p.Conditions.Users.IncludeRoles = append(p.Conditions.Users.IncludeRoles, rd.id)
		}
		p.Conditions.Users.ExcludeUsers = []string{td.users[breakGlassUser].id} // the break-glass account
		p.GrantControls = grant("OR", "mfa")
	}},
	{caPolicies[1].id, caPolicies[1].name, "enabled", func(p *conditionalAccessPolicy, td *tenantData) {
		p.Conditions.ClientAppTypes = []string{"exchangeActiveSync", "other"}
		p.Conditions.Users.IncludeUsers = []string{"All"}
		p.Conditions.Users.ExcludeUsers = []string{td.users[breakGlassUser].id}
		p.GrantControls = grant("OR", "block")
	}},
	{caPolicies[2].id, caPolicies[2].name, "enabledForReportingButNotEnforced", func(p *conditionalAccessPolicy, _ *tenantData) {
		p.Conditions.Applications.IncludeApplications = []string{"Office365"}
		p.Conditions.Users.IncludeUsers = []string{"All"}
		p.Conditions.Platforms = &caPlatforms{IncludePlatforms: []string{"all"}, ExcludePlatforms: []string{"iOS", "android"}}
		p.GrantControls = grant("OR", "compliantDevice", "domainJoinedDevice")
	}},
	{caPolicies[3].id, caPolicies[3].name, "enabled", func(p *conditionalAccessPolicy, _ *tenantData) {
		p.Conditions.Applications.IncludeApplications = []string{"797f4846-ba00-4fd7-ba43-dac1f8f63013"}
		p.Conditions.Users.IncludeUsers = []string{"All"}
		p.GrantControls = grant("OR", "mfa")
	}},
	{"", "Block access from untrusted locations", "disabled", func(p *conditionalAccessPolicy, _ *tenantData) {
		p.Conditions.Users.IncludeUsers = []string{"All"}
		p.Conditions.Locations = &caLocations{IncludeLocations: []string{"All"}, ExcludeLocations: []string{"AllTrusted"}}
		p.GrantControls = grant("OR", "block")
	}},
	{"", "Require password change for high user risk", "enabled", func(p *conditionalAccessPolicy, _ *tenantData) {
		p.Conditions.UserRiskLevels = []string{"high"}
		p.Conditions.Users.IncludeUsers = []string{"All"}
		p.GrantControls = grant("AND", "mfa", "passwordChange")
	}},
	{"", "Require MFA for risky sign-ins", "enabledForReportingButNotEnforced", func(p *conditionalAccessPolicy, _ *tenantData) {
		p.Conditions.SignInRiskLevels = []string{"high", "medium"}
		p.Conditions.Users.IncludeUsers = []string{"All"}
		p.GrantControls = grant("OR", "mfa")
	}},
	{"", "Sign-in frequency for unmanaged devices", "disabled", func(p *conditionalAccessPolicy, _ *tenantData) {
		p.Conditions.Users.IncludeUsers = []string{"All"}
		p.Conditions.Devices = &caDevices{}
		p.Conditions.Devices.DeviceFilter.Mode, p.Conditions.Devices.DeviceFilter.Rule = "include", `device.isCompliant -ne True`
		p.SessionControls = &caSession{
			PersistentBrowser: &persistentBrowse{IsEnabled: true, Mode: "never"},
			SignInFrequency: &signInFrequency{IsEnabled: true, Value: 4, Type: "hours",
				AuthenticationType: "primaryAndSecondaryAuthentication", FrequencyInterval: "timeBased"},
		}
	}},
}

var caStates = []string{"enabled", "disabled", "enabledForReportingButNotEnforced"}

// genConditionalAccessPolicies: the templates, then numbered copies in rotating states.
func genConditionalAccessPolicies(td *tenantData, count int) []snapItem {
	out := make([]snapItem, 0, count)
	for k := range count {
		t := caTemplates[k%len(caTemplates)]
		h := mix(td.seed^0xca, uint64(k))
		id, name, state := t.id, t.name, t.state
		if k >= len(caTemplates) || id == "" {
			id = guid(td.seed^0xca9, uint64(k))
		}
		if k >= len(caTemplates) {
			name = fmt.Sprintf("%s (%d)", name, k/len(caTemplates)+1)
			state = caStates[k%len(caStates)]
		}
		created := td.anchor.Add(-time.Duration(30+h%700) * 24 * time.Hour).Add(-time.Duration((h>>10)%86_400_000_000) * 100 * time.Nanosecond)
		p := conditionalAccessPolicy{
			ID: id, DisplayName: name, CreatedDateTime: FormatTime(created), State: state,
			Conditions: caConditions{
				UserRiskLevels: []string{}, SignInRiskLevels: []string{}, ClientAppTypes: []string{"all"}, ServicePrincipalRiskLevels: []string{},
				Applications: caApplications{IncludeApplications: []string{"All"}, ExcludeApplications: []string{}, IncludeUserActions: []string{},
					IncludeAuthenticationContextClassReferences: []string{}},
				Users: caUsers{IncludeUsers: []string{}, ExcludeUsers: []string{}, IncludeGroups: []string{}, ExcludeGroups: []string{},
					IncludeRoles: []string{}, ExcludeRoles: []string{}},
			},
		}
		if (h>>50)%3 != 0 { // modifiedDateTime may be null (never modified)
			p.ModifiedDateTime = strPtr(FormatTime(created.Add(time.Duration(1+(h>>20)%20) * 24 * time.Hour)))
		}
		t.build(&p, td)
		if p.GrantControls != nil {
			p.GrantControls.AuthenticationStrengthContext = "https://graph.microsoft.com/v1.0/$metadata#identity/conditionalAccess/policies('" + id + "')/grantControls/authenticationStrength/$entity"
		}
		out = append(out, snapItem{id: id, raw: mustJSON(p)})
	}
	return out
}

// userRegistrationDetails is the v1.0 resource (reports/authenticationMethods).
type userRegistrationDetails struct {
	ID                                            string   `json:"id"`
	UserPrincipalName                             string   `json:"userPrincipalName"`
	UserDisplayName                               string   `json:"userDisplayName"`
	UserType                                      string   `json:"userType"`
	IsAdmin                                       bool     `json:"isAdmin"`
	IsSsprRegistered                              bool     `json:"isSsprRegistered"`
	IsSsprEnabled                                 bool     `json:"isSsprEnabled"`
	IsSsprCapable                                 bool     `json:"isSsprCapable"`
	IsMfaRegistered                               bool     `json:"isMfaRegistered"`
	IsMfaCapable                                  bool     `json:"isMfaCapable"`
	IsPasswordlessCapable                         bool     `json:"isPasswordlessCapable"`
	IsSystemPreferredAuthenticationMethodEnabled  bool     `json:"isSystemPreferredAuthenticationMethodEnabled"`
	MethodsRegistered                             []string `json:"methodsRegistered"`
	SystemPreferredAuthenticationMethods          []string `json:"systemPreferredAuthenticationMethods"`
	UserPreferredMethodForSecondaryAuthentication string   `json:"userPreferredMethodForSecondaryAuthentication"`
	LastUpdatedDateTime                           string   `json:"lastUpdatedDateTime"`
}

var mfaMethodSets = []struct {
	methods   []string
	preferred string // userPreferredMethodForSecondaryAuthentication
	system    string // systemPreferredAuthenticationMethods
}{
	{[]string{"microsoftAuthenticatorPush", "softwareOneTimePasscode"}, "push", "push"},
	{[]string{"microsoftAuthenticatorPush", "mobilePhone"}, "push", "push"},
	{[]string{"mobilePhone"}, "sms", "sms"},
	{[]string{"softwareOneTimePasscode", "email"}, "oath", "oath"},
	{[]string{"fido2", "microsoftAuthenticatorPush"}, "push", "Fido2"},
	{[]string{"windowsHelloForBusiness", "microsoftAuthenticatorPush", "mobilePhone"}, "push", "push"},
}

// genUserRegistrationDetails: one item per user of the pool (count of them), consistent with the
// generated role assignments.
func genUserRegistrationDetails(td *tenantData, count int) []snapItem {
	// Every holder of a role, active or eligible, has MFA but the break-glass account (user 1, which the
	// MFA policy exempts); the privileged-user-without-MFA scenario (scenarios.go) adds another.
	admins, eligible := map[int]bool{}, map[int]bool{}
	for _, p := range activeRolePairs(td, td.cfg.Datasets["role_assignments"].Count) {
		admins[p.user] = true
	}
	for _, p := range eligibleRolePairs(td, td.cfg.Datasets["role_eligibility_schedules"].Count) {
		eligible[p.user] = true
	}
	out := make([]snapItem, 0, count)
	for k := range min(count, len(td.users)) {
		u := td.users[k]
		h := mix(td.seed^0x3fa, uint64(k)^0xd37a)
		registered := h%10 < 7
		if admins[k] || eligible[k] {
			registered = k != breakGlassUser
		}
		d := userRegistrationDetails{
			ID: u.id, UserPrincipalName: u.upn, UserDisplayName: u.displayName, UserType: "member", IsAdmin: admins[k],
			IsSsprEnabled: (h>>8)%10 < 8, IsSystemPreferredAuthenticationMethodEnabled: true,
			MethodsRegistered: []string{}, SystemPreferredAuthenticationMethods: []string{}, UserPreferredMethodForSecondaryAuthentication: "none",
			LastUpdatedDateTime: FormatTime(td.anchor.Add(-time.Duration((h>>16)%uint64(24*time.Hour/(100*time.Nanosecond))) * 100 * time.Nanosecond)),
		}
		if registered {
			set := mfaMethodSets[(h>>4)%uint64(len(mfaMethodSets))]
			d.MethodsRegistered = set.methods
			d.SystemPreferredAuthenticationMethods = []string{set.system}
			d.UserPreferredMethodForSecondaryAuthentication = set.preferred
			d.IsMfaRegistered, d.IsMfaCapable = true, true
		} else if (h>>12)%3 == 0 {
			d.MethodsRegistered = []string{"email"} // registered for password reset only
		}
		for _, m := range d.MethodsRegistered {
			switch m {
			case "mobilePhone", "email", "microsoftAuthenticatorPush", "softwareOneTimePasscode":
				d.IsSsprRegistered = true
			case "fido2", "windowsHelloForBusiness":
				d.IsPasswordlessCapable = true
			}
		}
		d.IsSsprCapable = d.IsSsprEnabled && d.IsSsprRegistered
		out = append(out, snapItem{id: u.id, raw: mustJSON(d)})
	}
	return out
}

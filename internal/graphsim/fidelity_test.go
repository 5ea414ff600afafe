package graphsim_test

// Fidelity (DESIGN.md §7): what the simulator serves must deserialize with Microsoft's own Go models
// (msgraph-sdk-go) without errors and without anything the models do not know.
//
// The checker makes two passes over every page body:
//
//  1. The real SDK path: kiota-serialization-json-go's JsonParseNodeFactory → GetObjectValue(<Kind>
//     CollectionResponse factory). Any error fails.
//  2. A "shadow" parse: a ParseNode over the raw JSON (encoding/json) that, at every object, asks the model
//     the SDK chose (discriminators included, because the model's own factory is called) for
//     GetFieldDeserializers(), compares the raw keys with it, and recurses by invoking the model's own
//     field deserializer closures with a shadow child node. Nested models are thus checked with exactly
//     the types the SDK would use, without reflection or naming guesses.
//
// The shadow pass reports what the SDK drops silently: unknown keys (the SDK puts them in
// GetAdditionalData(), except JSON-null ones, which vanish), enum strings the model does not know (the
// generated Parse<Enum> returns nil, nil), and a scalar or array where an object is expected (the SDK
// yields an empty model). Finally the real parse's GetAdditionalData() maps are walked by reflection as a
// cross-check: every non-annotation key there must also have been reported by the shadow pass.
//
// The walker is generic: every kind the simulator serves has its factory in fidelityKinds and its
// @odata.context in fidelityContexts; testdata/fidelity_samples.json holds a documentation sample of each.
//
// Beta sign-ins (non-interactive, service principal, managed identity) are not checked: Microsoft's beta
// Go SDK (msgraph-beta-sdk-go) cannot be fetched in this environment, so only v1.0 shapes are verified
// against Microsoft's models. The beta records follow the beta resource documentation instead.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	khttp "github.com/microsoft/kiota-http-go"
	jsonser "github.com/microsoft/kiota-serialization-json-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	msgraphauth "github.com/microsoftgraph/msgraph-sdk-go-core/authentication"
	"github.com/microsoftgraph/msgraph-sdk-go/auditlogs"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/models/security"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// fidelityKinds maps a kind to the SDK factory of its collection page.
var fidelityKinds = map[string]absser.ParsableFactory{
	"signIn":                         models.CreateSignInCollectionResponseFromDiscriminatorValue,
	"directoryAudit":                 models.CreateDirectoryAuditCollectionResponseFromDiscriminatorValue,
	"unifiedRoleAssignment":          models.CreateUnifiedRoleAssignmentCollectionResponseFromDiscriminatorValue,
	"unifiedRoleEligibilitySchedule": models.CreateUnifiedRoleEligibilityScheduleCollectionResponseFromDiscriminatorValue,
	"conditionalAccessPolicy":        models.CreateConditionalAccessPolicyCollectionResponseFromDiscriminatorValue,
	"userRegistrationDetails":        models.CreateUserRegistrationDetailsCollectionResponseFromDiscriminatorValue,
	"alert":                          security.CreateAlertCollectionResponseFromDiscriminatorValue,
	"riskDetection":                  models.CreateRiskDetectionCollectionResponseFromDiscriminatorValue,
	"incident":                       security.CreateIncidentCollectionResponseFromDiscriminatorValue,
	"auditEvent":                     models.CreateAuditEventCollectionResponseFromDiscriminatorValue,
	"riskyUser":                      models.CreateRiskyUserCollectionResponseFromDiscriminatorValue,
}

// fidelityContexts is the @odata.context Graph v1.0 puts on each kind's page.
var fidelityContexts = map[string]string{
	"signIn":                         "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns",
	"directoryAudit":                 "https://graph.microsoft.com/v1.0/$metadata#auditLogs/directoryAudits",
	"unifiedRoleAssignment":          "https://graph.microsoft.com/v1.0/$metadata#roleManagement/directory/roleAssignments(principal(),roleDefinition())",
	"unifiedRoleEligibilitySchedule": "https://graph.microsoft.com/v1.0/$metadata#roleManagement/directory/roleEligibilitySchedules",
	"conditionalAccessPolicy":        "https://graph.microsoft.com/v1.0/$metadata#identity/conditionalAccess/policies",
	"userRegistrationDetails":        "https://graph.microsoft.com/v1.0/$metadata#reports/authenticationMethods/userRegistrationDetails",
	"alert":                          "https://graph.microsoft.com/v1.0/$metadata#security/alerts_v2",
	"riskDetection":                  "https://graph.microsoft.com/v1.0/$metadata#identityProtection/riskDetections",
	"incident":                       "https://graph.microsoft.com/v1.0/$metadata#security/incidents(alerts())",
	"auditEvent":                     "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/auditEvents",
	"riskyUser":                      "https://graph.microsoft.com/v1.0/$metadata#identityProtection/riskyUsers",
}

// finding is one fidelity problem.
type finding struct {
	Path    string // JSON path, e.g. $.value[0].location.bogusField
	Kind    string // unknownKey | unknownEnum | notAnObject | discriminator | additionalData
	Detail  string
	Warning bool // reported with t.Log; does not fail checkFidelityPage
}

func (f finding) String() string { return fmt.Sprintf("%s: %s %s", f.Path, f.Kind, f.Detail) }

type fidelityResult struct {
	Parsed   absser.Parsable // the real SDK parse
	Findings []finding
}

// errors returns the findings that are not warnings.
func (r fidelityResult) errors() []finding {
	var out []finding
	for _, f := range r.Findings {
		if !f.Warning {
			out = append(out, f)
		}
	}
	return out
}

// checkFidelityPage fails t if body (a collection page of kind) does not parse with the SDK or holds
// anything the SDK models do not recognise.
func checkFidelityPage(t testing.TB, kind string, body []byte) absser.Parsable {
	t.Helper()
	res, err := checkFidelity(kind, body)
	if err != nil {
		t.Fatalf("fidelity %s: %v", kind, err)
		return nil
	}
	for _, f := range res.Findings {
		if f.Warning {
			t.Logf("fidelity %s warning: %s", kind, f)
		} else {
			t.Errorf("fidelity %s: %s", kind, f)
		}
	}
	return res.Parsed
}

// checkFidelity is checkFidelityPage without testing: err is a parse error (the SDK itself would fail);
// findings are what the SDK would swallow.
func checkFidelity(kind string, body []byte) (fidelityResult, error) {
	factory, ok := fidelityKinds[kind]
	if !ok {
		return fidelityResult{}, fmt.Errorf("unknown kind %q", kind)
	}
	return checkFidelityWith(factory, body)
}

// checkFidelityWith works for any SDK factory (page, single entity, error).
func checkFidelityWith(factory absser.ParsableFactory, body []byte) (fidelityResult, error) {
	var res fidelityResult

	// (a) the real SDK path.
	root, err := jsonser.NewJsonParseNodeFactory().GetRootParseNode("application/json", body)
	if err != nil {
		return res, fmt.Errorf("sdk root parse node: %w", err)
	}
	parsed, err := root.GetObjectValue(factory)
	if err != nil {
		return res, fmt.Errorf("sdk GetObjectValue: %w", err)
	}
	if parsed == nil {
		return res, errors.New("sdk GetObjectValue returned nil (body is null?)")
	}
	res.Parsed = parsed

	// (b) the shadow parse, comparing raw keys with GetFieldDeserializers.
	c := &checker{}
	sh := &shadow{c: c, raw: json.RawMessage(body), path: "$"}
	if sh.kind() != '{' {
		return res, errors.New("body is not a JSON object")
	}
	if _, err := sh.GetObjectValue(factory); err != nil {
		return res, fmt.Errorf("shadow parse: %w", err)
	}

	// cross-check with the real parse's additionalData.
	unknown := map[string]int{}
	for _, f := range c.findings {
		if f.Kind == "unknownKey" {
			unknown[leaf(f.Path)]++
		}
	}
	walkAdditionalData(parsed, "$", map[uintptr]bool{}, func(path, key string) {
		if unknown[key] > 0 {
			unknown[key]--
			return
		}
		c.add(finding{Path: path + "." + key, Kind: "additionalData",
			Detail: "key in GetAdditionalData() not reported by the shadow pass (checker bug?)"})
	})

	sort.SliceStable(c.findings, func(i, j int) bool { return c.findings[i].Path < c.findings[j].Path })
	res.Findings = c.findings
	return res, nil
}

// isAnnotation reports whether a JSON key is an OData instance or property annotation (@odata.context,
// @odata.nextLink, @odata.type, principal@odata.context, ...), legitimate even where the model has no
// field for it.
func isAnnotation(key string) bool { return strings.Contains(key, "@") }

type checker struct{ findings []finding }

func (c *checker) add(f finding) { c.findings = append(c.findings, f) }

// shadow is a serialization.ParseNode over a raw JSON value.
type shadow struct {
	c      *checker
	raw    json.RawMessage
	path   string
	inner  *jsonser.JsonParseNode     // lazily built, for primitives
	obj    map[string]json.RawMessage // lazily decoded object members
	before absser.ParsableAction
	after  absser.ParsableAction
}

var _ absser.ParseNode = (*shadow)(nil)

func (n *shadow) kind() byte {
	b := bytes.TrimLeft(n.raw, " \t\r\n")
	if len(b) == 0 {
		return 'n'
	}
	return b[0] // '{', '[', '"', 't', 'f', 'n', or a digit / '-'
}

func (n *shadow) isNull() bool { return n == nil || n.kind() == 'n' }

func (n *shadow) primitive() *jsonser.JsonParseNode {
	if n.inner == nil && !n.isNull() {
		p, err := jsonser.NewJsonParseNode(n.raw)
		if err == nil {
			n.inner = p
		}
	}
	return n.inner // a nil *JsonParseNode answers nil, nil to every getter
}

func (n *shadow) object() (map[string]json.RawMessage, error) {
	if n.obj != nil {
		return n.obj, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(n.raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", n.path, err)
	}
	n.obj = m
	return m, nil
}

func (n *shadow) array() ([]json.RawMessage, error) {
	var a []json.RawMessage
	if err := json.Unmarshal(n.raw, &a); err != nil {
		return nil, fmt.Errorf("%s: value is not a collection: %w", n.path, err)
	}
	return a, nil
}

func (n *shadow) child(raw json.RawMessage, path string) *shadow {
	return &shadow{c: n.c, raw: raw, path: path, before: n.before, after: n.after}
}

func (n *shadow) GetChildNode(index string) (absser.ParseNode, error) {
	if n.isNull() || n.kind() != '{' {
		return nil, nil
	}
	m, err := n.object()
	if err != nil {
		return nil, err
	}
	raw, ok := m[index]
	if !ok {
		return nil, nil // must be an untyped nil: generated code tests != nil
	}
	return n.child(raw, n.path+"."+index), nil
}

func (n *shadow) GetObjectValue(ctor absser.ParsableFactory) (absser.Parsable, error) {
	if n.isNull() {
		return nil, nil
	}
	result, err := ctor(n) // the discriminator lookup goes through our GetChildNode
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.path, err)
	}
	if _, untyped := result.(absser.UntypedNodeable); untyped {
		return n.primitive().GetObjectValue(ctor) // anything goes
	}
	if n.kind() != '{' {
		n.c.add(finding{Path: n.path, Kind: "notAnObject",
			Detail: fmt.Sprintf("%T expects a JSON object, got %.40s (the SDK silently yields an empty model)", result, n.raw)})
		return result, nil
	}
	m, err := n.object()
	if err != nil {
		return nil, err
	}
	fields := result.GetFieldDeserializers()
	// Open types (microsoft.graph.dictionary, ...) declare nothing but @odata.type: any key is legitimate.
	open := len(fields) == 0 || (len(fields) == 1 && fields["@odata.type"] != nil)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cpath := n.path + "." + k
		if f := fields[k]; f != nil {
			if err := f(n.child(m[k], cpath)); err != nil {
				return nil, fmt.Errorf("%s: %w", cpath, err)
			}
			continue
		}
		if open || isAnnotation(k) {
			continue
		}
		n.c.add(finding{Path: cpath, Kind: "unknownKey",
			Detail: fmt.Sprintf("%T has no field %q (value %.60s)", result, k, m[k])})
	}
	if odt, ok := m["@odata.type"]; ok {
		var s string
		if json.Unmarshal(odt, &s) == nil && s != "" {
			want := s[strings.LastIndex(s, ".")+1:]
			got := reflect.TypeOf(result)
			for got.Kind() == reflect.Pointer {
				got = got.Elem()
			}
			if !strings.EqualFold(want, got.Name()) {
				n.c.add(finding{Path: n.path + ".@odata.type", Kind: "discriminator", Warning: true,
					Detail: fmt.Sprintf("%q was parsed as %s (type not known to this factory)", s, got)})
			}
		}
	}
	return result, nil
}

func (n *shadow) GetCollectionOfObjectValues(ctor absser.ParsableFactory) ([]absser.Parsable, error) {
	if n.isNull() {
		return nil, nil
	}
	a, err := n.array()
	if err != nil {
		return nil, err
	}
	out := make([]absser.Parsable, len(a))
	for i, raw := range a {
		v, err := n.child(raw, fmt.Sprintf("%s[%d]", n.path, i)).GetObjectValue(ctor)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (n *shadow) GetCollectionOfPrimitiveValues(targetType string) ([]any, error) {
	return n.primitive().GetCollectionOfPrimitiveValues(targetType)
}

func (n *shadow) GetCollectionOfEnumValues(parser absser.EnumFactory) ([]any, error) {
	if n.isNull() {
		return nil, nil
	}
	a, err := n.array()
	if err != nil {
		return nil, err
	}
	out := make([]any, len(a))
	for i, raw := range a {
		v, err := n.child(raw, fmt.Sprintf("%s[%d]", n.path, i)).GetEnumValue(parser)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (n *shadow) GetEnumValue(parser absser.EnumFactory) (any, error) {
	v, err := n.primitive().GetEnumValue(parser)
	if err == nil && isNilValue(v) && n.kind() == '"' {
		n.c.add(finding{Path: n.path, Kind: "unknownEnum",
			Detail: fmt.Sprintf("value %s is not a member of the model's enum (the SDK drops it silently)", n.raw)})
	}
	return v, err
}

func (n *shadow) GetStringValue() (*string, error)   { return n.primitive().GetStringValue() }
func (n *shadow) GetBoolValue() (*bool, error)       { return n.primitive().GetBoolValue() }
func (n *shadow) GetInt8Value() (*int8, error)       { return n.primitive().GetInt8Value() }
func (n *shadow) GetByteValue() (*byte, error)       { return n.primitive().GetByteValue() }
func (n *shadow) GetFloat32Value() (*float32, error) { return n.primitive().GetFloat32Value() }
func (n *shadow) GetFloat64Value() (*float64, error) { return n.primitive().GetFloat64Value() }
func (n *shadow) GetInt32Value() (*int32, error)     { return n.primitive().GetInt32Value() }
func (n *shadow) GetInt64Value() (*int64, error)     { return n.primitive().GetInt64Value() }
func (n *shadow) GetTimeValue() (*time.Time, error)  { return n.primitive().GetTimeValue() }
func (n *shadow) GetUUIDValue() (*uuid.UUID, error)  { return n.primitive().GetUUIDValue() }
func (n *shadow) GetByteArrayValue() ([]byte, error) { return n.primitive().GetByteArrayValue() }
func (n *shadow) GetRawValue() (any, error)          { return n.primitive().GetRawValue() }
func (n *shadow) GetISODurationValue() (*absser.ISODuration, error) {
	return n.primitive().GetISODurationValue()
}
func (n *shadow) GetTimeOnlyValue() (*absser.TimeOnly, error) {
	return n.primitive().GetTimeOnlyValue()
}
func (n *shadow) GetDateOnlyValue() (*absser.DateOnly, error) {
	return n.primitive().GetDateOnlyValue()
}
func (n *shadow) GetOnBeforeAssignFieldValues() absser.ParsableAction { return n.before }
func (n *shadow) SetOnBeforeAssignFieldValues(a absser.ParsableAction) error {
	n.before = a
	return nil
}
func (n *shadow) GetOnAfterAssignFieldValues() absser.ParsableAction { return n.after }
func (n *shadow) SetOnAfterAssignFieldValues(a absser.ParsableAction) error {
	n.after = a
	return nil
}

func isNilValue(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

func leaf(path string) string { return path[strings.LastIndex(path, ".")+1:] }

var (
	parsableType = reflect.TypeOf((*absser.Parsable)(nil)).Elem()
	skipGetters  = map[string]bool{"GetAdditionalData": true, "GetBackingStore": true, "GetFieldDeserializers": true}
)

// walkAdditionalData visits every Parsable reachable from p through exported Get* methods (no arguments,
// one result that is a Parsable or a slice of them) and calls report for each non-annotation key of its
// GetAdditionalData(). Paths use the getter names, lower-camel-cased.
func walkAdditionalData(p absser.Parsable, path string, seen map[uintptr]bool, report func(path, key string)) {
	if isNilValue(p) {
		return
	}
	rv := reflect.ValueOf(p)
	if rv.Kind() == reflect.Pointer {
		if seen[rv.Pointer()] {
			return
		}
		seen[rv.Pointer()] = true
	}
	if h, ok := p.(absser.AdditionalDataHolder); ok {
		fields := p.GetFieldDeserializers()
		open := len(fields) == 0 || (len(fields) == 1 && fields["@odata.type"] != nil)
		if _, untyped := p.(absser.UntypedNodeable); !open && !untyped {
			keys := make([]string, 0)
			for k := range h.GetAdditionalData() {
				if !isAnnotation(k) {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				report(path, k)
			}
		}
	}
	rt := rv.Type()
	for i := 0; i < rt.NumMethod(); i++ {
		m := rt.Method(i)
		if !strings.HasPrefix(m.Name, "Get") || skipGetters[m.Name] || m.Type.NumIn() != 1 || m.Type.NumOut() != 1 {
			continue
		}
		out := m.Type.Out(0)
		name := strings.ToLower(m.Name[3:4]) + m.Name[4:]
		switch {
		case out.Implements(parsableType):
			v := rv.Method(i).Call(nil)[0]
			if (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) && v.IsNil() {
				continue
			}
			if pv, ok := v.Interface().(absser.Parsable); ok {
				walkAdditionalData(pv, path+"."+name, seen, report)
			}
		case out.Kind() == reflect.Slice && out.Elem().Implements(parsableType):
			v := rv.Method(i).Call(nil)[0]
			for j := 0; j < v.Len(); j++ {
				e := v.Index(j)
				if e.IsNil() {
					continue
				}
				if pv, ok := e.Interface().(absser.Parsable); ok {
					walkAdditionalData(pv, fmt.Sprintf("%s.%s[%d]", path, name, j), seen, report)
				}
			}
		}
	}
}

// ---------------------------------------------------------------------------------------------------
// Samples and page helpers

// fidelitySamples loads testdata/fidelity_samples.json: kind → one JSON item.
func fidelitySamples(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile("testdata/fidelity_samples.json")
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &m))
	delete(m, "_comment")
	return m
}

// samplePage wraps items in a collection page of kind; nextLink is omitted when empty.
func samplePage(kind, nextLink string, items ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"@odata.context":%q,`, fidelityContexts[kind])
	if nextLink != "" {
		fmt.Fprintf(&b, `"@odata.nextLink":%q,`, nextLink)
	}
	b.WriteString(`"value":[`)
	b.WriteString(strings.Join(items, ","))
	b.WriteString(`]}`)
	return []byte(b.String())
}

// mutate sets path (slash separated, numeric parts index arrays) in the JSON object item to v.
func mutate(t testing.TB, item []byte, path string, v any) []byte {
	t.Helper()
	var root any
	require.NoError(t, json.Unmarshal(item, &root))
	parts := strings.Split(path, "/")
	cur := root
	for _, p := range parts[:len(parts)-1] {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			var i int
			_, err := fmt.Sscan(p, &i)
			require.NoError(t, err)
			cur = c[i]
		default:
			t.Fatalf("mutate: %s does not lead to an object", path)
		}
	}
	obj, ok := cur.(map[string]any)
	require.True(t, ok, "mutate: %s does not lead to an object", path)
	obj[parts[len(parts)-1]] = v
	out, err := json.Marshal(root)
	require.NoError(t, err)
	return out
}

// ---------------------------------------------------------------------------------------------------
// The checker checks itself

func TestFidelitySamplesPassWithZeroFindings(t *testing.T) {
	samples := fidelitySamples(t)
	for kind := range fidelityContexts {
		require.Contains(t, samples, kind, "testdata keeps a sample of every kind, for later datasets")
	}
	for kind := range fidelityKinds {
		t.Run(kind, func(t *testing.T) {
			body := samplePage(kind, "https://graph.microsoft.com/v1.0/auditLogs/x?$skiptoken=abc", string(samples[kind]))
			res, err := checkFidelity(kind, body)
			require.NoError(t, err)
			assert.Empty(t, res.Findings, "want zero findings, warnings included")
		})
	}
}

func TestFidelitySampleValuesParse(t *testing.T) {
	samples := fidelitySamples(t)
	p := checkFidelityPage(t, "signIn", samplePage("signIn", "https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=abc", string(samples["signIn"]))).(models.SignInCollectionResponseable)
	s := p.GetValue()[0]
	assert.Equal(t, 619583300, s.GetCreatedDateTime().Nanosecond(), "7 fractional digits")
	assert.InDelta(t, 47.68050003051758, *s.GetLocation().GetGeoCoordinates().GetLatitude(), 0)
	assert.Nil(t, s.GetLocation().GetGeoCoordinates().GetAltitude())
	assert.Equal(t, models.NONE_RISKLEVEL, *s.GetRiskLevelAggregated())
	assert.NotNil(t, p.GetOdataNextLink())
	assert.Contains(t, p.GetAdditionalData(), "@odata.context")
}

func TestFidelityCheckerCatches(t *testing.T) {
	samples := fidelitySamples(t)
	cases := []struct {
		kind, path string
		value      any
		wantKind   string // the one finding expected; "" = a parse error
		wantPath   string
	}{
		{"signIn", "bogusField", 1, "unknownKey", "$.value[0].bogusField"},
		{"signIn", "bogusField", nil, "unknownKey", "$.value[0].bogusField"},                                     // null: the SDK drops it without a trace
		{"signIn", "signInEventTypes", []string{"interactiveUser"}, "unknownKey", "$.value[0].signInEventTypes"}, // beta only
		{"signIn", "authenticationRequirement", "singleFactorAuthentication", "unknownKey", "$.value[0].authenticationRequirement"},
		{"signIn", "location/geoCoordinates/bogusField", 1, "unknownKey", "$.value[0].location.geoCoordinates.bogusField"},
		{"signIn", "status/bogusField", "x", "unknownKey", "$.value[0].status.bogusField"},
		{"signIn", "appliedConditionalAccessPolicies/1/bogusField", true, "unknownKey", "$.value[0].appliedConditionalAccessPolicies[1].bogusField"},
		{"signIn", "deviceDetail/BROWSER", "x", "unknownKey", "$.value[0].deviceDetail.BROWSER"}, // keys are case-sensitive
		{"signIn", "riskLevelAggregated", "extreme", "unknownEnum", "$.value[0].riskLevelAggregated"},
		{"signIn", "appliedConditionalAccessPolicies/0/result", "skipped", "unknownEnum", "$.value[0].appliedConditionalAccessPolicies[0].result"},
		{"signIn", "location", "Redmond", "notAnObject", "$.value[0].location"},
		{"signIn", "isInteractive", "yes", "", ""},
		{"signIn", "createdDateTime", "13/03/2024", "", ""},
		{"directoryAudit", "initiatedBy/user/homeTenantId", "x", "unknownKey", "$.value[0].initiatedBy.user.homeTenantId"},
		{"directoryAudit", "targetResources/0/modifiedProperties/0/bogusField", 1, "unknownKey", "$.value[0].targetResources[0].modifiedProperties[0].bogusField"},
		{"directoryAudit", "result", "succeeded", "unknownEnum", "$.value[0].result"},
		{"directoryAudit", "additionalDetails", map[string]string{"key": "v"}, "", ""}, // an object where a collection is expected
	}
	for _, c := range cases {
		t.Run(c.kind+"/"+c.path+fmt.Sprintf("=%v", c.value), func(t *testing.T) {
			body := samplePage(c.kind, "", string(mutate(t, samples[c.kind], c.path, c.value)))
			res, err := checkFidelity(c.kind, body)
			if c.wantKind == "" {
				require.Error(t, err, "want a parse error, got findings %v", res.Findings)
				return
			}
			require.NoError(t, err)
			errs := res.errors()
			require.Len(t, errs, 1, "%v", res.Findings)
			assert.Equal(t, c.wantKind, errs[0].Kind)
			assert.Equal(t, c.wantPath, errs[0].Path)
		})
	}
}

func TestFidelityDiscriminatorWarning(t *testing.T) {
	// The docs example of directoryAudit carries this type, which v1.0 does not define: the SDK parses it
	// as a plain targetResource.
	item := mutate(t, fidelitySamples(t)["directoryAudit"], "targetResources/0/@odata.type", "#microsoft.graph.TargetResourceUser")
	res, err := checkFidelity("directoryAudit", samplePage("directoryAudit", "", string(item)))
	require.NoError(t, err)
	assert.Empty(t, res.errors())
	require.Len(t, res.Findings, 1)
	assert.Equal(t, "discriminator", res.Findings[0].Kind)
}

// recorder lets a test watch checkFidelityPage fail a test without failing itself.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Logf(string, ...any)       {}
func (r *recorder) Errorf(f string, a ...any) { r.errors = append(r.errors, fmt.Sprintf(f, a...)) }
func (r *recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...) }

func TestFidelityCheckPageFailsTheTest(t *testing.T) {
	samples := fidelitySamples(t)
	r := &recorder{TB: t}
	checkFidelityPage(r, "signIn", samplePage("signIn", "", string(mutate(t, samples["signIn"], "bogusField", 1))))
	require.Len(t, r.errors, 1)
	assert.Contains(t, r.errors[0], "bogusField")

	// The plain SDK parse keeps the key in GetAdditionalData()...
	res, err := checkFidelity("signIn", samplePage("signIn", "", string(mutate(t, samples["signIn"], "location/bogusField", 1))))
	require.NoError(t, err)
	loc := res.Parsed.(models.SignInCollectionResponseable).GetValue()[0].GetLocation()
	assert.NotNil(t, loc.GetAdditionalData()["bogusField"])
	// ...but not when the value is null, which the shadow pass still catches.
	res, err = checkFidelity("signIn", samplePage("signIn", "", string(mutate(t, samples["signIn"], "location/bogusField", nil))))
	require.NoError(t, err)
	loc = res.Parsed.(models.SignInCollectionResponseable).GetValue()[0].GetLocation()
	assert.NotContains(t, loc.GetAdditionalData(), "bogusField")
	assert.Len(t, res.errors(), 1)

	// The additionalData walk reaches nested models.
	item := mutate(t, samples["directoryAudit"], "initiatedBy/user/bogusA", 1)
	item = mutate(t, item, "targetResources/0/modifiedProperties/1/bogusB", "x")
	res, err = checkFidelity("directoryAudit", samplePage("directoryAudit", "", string(item)))
	require.NoError(t, err)
	var walked []string
	walkAdditionalData(res.Parsed, "$", map[uintptr]bool{}, func(path, key string) { walked = append(walked, path+"."+key) })
	assert.Len(t, walked, 2, "%v", walked)
	assert.Len(t, res.errors(), 2, "%v", res.Findings)

	_, err = checkFidelity("nope", []byte(`{}`))
	assert.Error(t, err)
	_, err = checkFidelity("signIn", []byte(`{"value":[`))
	assert.Error(t, err)
	_, err = checkFidelity("signIn", []byte(`null`))
	assert.Error(t, err)
}

// ---------------------------------------------------------------------------------------------------
// The simulator against the checker and the SDK

var graphTime7 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$`)

// fetchPages lists path to the end and returns the raw page bodies.
func (e *env) fetchPages(path, token string) [][]byte {
	e.t.Helper()
	var bodies [][]byte
	for next := path; next != ""; {
		r := e.get(next, token)
		p := decodePage(e.t, r)
		bodies = append(bodies, r.Body)
		next = p.NextLink
		require.Less(e.t, len(bodies), 1000)
	}
	return bodies
}

func TestSimulatorPagesFidelity(t *testing.T) {
	samples := fidelitySamples(t)
	spec := map[string]graphsim.DatasetSpec{
		"signins":          {Count: 450, Span: 6 * time.Hour, PerTimestamp: 2, RatePerSecond: 0.1, LateFraction: 0.2, LateDelay: time.Minute},
		"directory_audits": {Count: 300, Span: 6 * time.Hour, RatePerSecond: 0.05, LateFraction: 0.2, LateDelay: time.Minute},
	}
	cfg := smallTenants(2, spec)
	cfg.Tenants[1].Name = "" // the domain then derives from the tenant id
	cfg.Seed = 20240313
	cfg.Anchor = time.Now().Add(-20 * time.Minute) // history, then 20 minutes of live records
	e := start(t, cfg)

	// Injected records: the documentation examples, re-dated into the range.
	for k, kind := range map[string]string{"signins": "signIn", "directory_audits": "directoryAudit"} {
		field := map[string]string{"signins": "createdDateTime", "directory_audits": "activityDateTime"}[k]
		for i := range 3 {
			var obj map[string]any
			require.NoError(t, json.Unmarshal(samples[kind], &obj))
			obj["id"] = fmt.Sprintf("injected-%s-%d", k, i)
			obj[field] = graphsim.FormatTime(e.sim.Anchor().Add(-time.Duration(i+1) * time.Hour))
			require.NoError(t, e.sim.Inject(tenant1, k, time.Time{}, obj))
		}
	}

	type tenantCase struct {
		tenant, domain string
	}
	for _, tc := range []tenantCase{{tenant1, "@tenant1.onmicrosoft.com"}, {tenant2, "@tenant00000002.onmicrosoft.com"}} {
		t.Run(tc.tenant, func(t *testing.T) {
			tok := e.token(tc.tenant)

			// sign-ins
			var signIns []models.SignInable
			for _, body := range e.fetchPages(signInsPath+"?$top=100", tok) {
				p, ok := checkFidelityPage(t, "signIn", body).(models.SignInCollectionResponseable)
				require.True(t, ok)
				signIns = append(signIns, p.GetValue()...)
				var raw struct {
					Value []struct {
						CreatedDateTime string `json:"createdDateTime"`
					} `json:"value"`
				}
				require.NoError(t, json.Unmarshal(body, &raw))
				for _, v := range raw.Value {
					assert.Regexp(t, graphTime7, v.CreatedDateTime)
				}
			}
			assert.Greater(t, len(signIns), 450, "history and live records")
			errorCodes := map[int32]int{}
			caStatus := map[models.ConditionalAccessStatus]int{}
			policyResults := map[models.AppliedConditionalAccessPolicyResult]int{}
			cities := map[string]map[string]bool{}
			injected := 0
			for _, s := range signIns {
				if strings.HasPrefix(*s.GetId(), "injected-") {
					injected++
					continue
				}
				code := *s.GetStatus().GetErrorCode()
				errorCodes[code]++
				if code == 0 {
					assert.NotNil(t, s.GetStatus().GetAdditionalDetails())
				} else {
					assert.NotNil(t, s.GetStatus().GetFailureReason())
				}
				caStatus[*s.GetConditionalAccessStatus()]++
				for _, p := range s.GetAppliedConditionalAccessPolicies() {
					policyResults[*p.GetResult()]++
				}
				upn := *s.GetUserPrincipalName()
				assert.True(t, strings.HasSuffix(upn, tc.domain), upn)
				assert.NoError(t, uuid.Validate(*s.GetId()))
				if cities[upn] == nil {
					cities[upn] = map[string]bool{}
				}
				cities[upn][*s.GetLocation().GetCity()] = true
			}
			for _, code := range []int32{0, 50126, 50074, 50053, 53003} {
				assert.Positive(t, errorCodes[code], "sign-ins with error code %d", code)
			}
			for _, st := range []models.ConditionalAccessStatus{models.SUCCESS_CONDITIONALACCESSSTATUS, models.FAILURE_CONDITIONALACCESSSTATUS} {
				assert.Positive(t, caStatus[st], "conditionalAccessStatus %s", st)
			}
			for _, r := range []models.AppliedConditionalAccessPolicyResult{models.SUCCESS_APPLIEDCONDITIONALACCESSPOLICYRESULT,
				models.FAILURE_APPLIEDCONDITIONALACCESSPOLICYRESULT, models.NOTAPPLIED_APPLIEDCONDITIONALACCESSPOLICYRESULT} {
				assert.Positive(t, policyResults[r], "policy result %s", r)
			}
			assert.Equal(t, map[string]int{tenant1: 3}[tc.tenant], injected, "injected records are served")
			travellers := 0
			for _, c := range cities {
				if len(c) > 1 {
					travellers++
				}
			}
			assert.Positive(t, travellers, "a user signing in away from home")

			// directory audits
			var audits []models.DirectoryAuditable
			for _, body := range e.fetchPages(auditsPath+"?$top=80", tok) {
				p, ok := checkFidelityPage(t, "directoryAudit", body).(models.DirectoryAuditCollectionResponseable)
				require.True(t, ok)
				audits = append(audits, p.GetValue()...)
			}
			assert.Greater(t, len(audits), 300)
			results := map[models.OperationResult]int{}
			activities := map[string]int{}
			for _, a := range audits {
				results[*a.GetResult()]++
				if strings.HasPrefix(*a.GetId(), "injected-") {
					continue
				}
				activities[*a.GetActivityDisplayName()]++
				assert.True(t, strings.HasPrefix(*a.GetId(), "Directory_"), "audit ids are not GUIDs: %s", *a.GetId())
				assert.NotNil(t, a.GetInitiatedBy().GetUser())
				assert.Nil(t, a.GetInitiatedBy().GetApp())
				if *a.GetResult() == models.FAILURE_OPERATIONRESULT {
					assert.NotEmpty(t, *a.GetResultReason())
				}
				mods := a.GetTargetResources()[0].GetModifiedProperties()
				switch op := *a.GetOperationType(); op {
				case "Update", "Assign":
					assert.NotEmpty(t, mods, op)
				default:
					assert.Empty(t, mods, op)
				}
			}
			assert.Positive(t, results[models.SUCCESS_OPERATIONRESULT])
			assert.Positive(t, results[models.FAILURE_OPERATIONRESULT])
			assert.Len(t, activities, 7, "every audit activity: %v", activities)
		})
	}

	// The checker would catch the simulator adding a key or an enum value the models do not know.
	tok := e.token(tenant1)
	for _, c := range []struct {
		kind, path, mutation string
		value                any
		wantKind             string
	}{
		{"signIn", signInsPath + "?$top=3", "signInEventTypes", []string{"interactiveUser"}, "unknownKey"},
		{"signIn", signInsPath + "?$top=3", "status/errorCategory", "x", "unknownKey"},
		{"signIn", signInsPath + "?$top=3", "riskState", "compromised", "unknownEnum"},
		{"directoryAudit", auditsPath + "?$top=3", "initiatedBy/user/userType", "Member", "unknownKey"},
		{"directoryAudit", auditsPath + "?$top=3", "result", "partialSuccess", "unknownEnum"},
	} {
		t.Run("mutated "+c.kind+" "+c.mutation, func(t *testing.T) {
			var p struct {
				Context string            `json:"@odata.context"`
				Value   []json.RawMessage `json:"value"`
			}
			require.NoError(t, json.Unmarshal(e.get(c.path, tok).Body, &p))
			require.NotEmpty(t, p.Value)
			p.Value[1] = mutate(t, p.Value[1], c.mutation, c.value)
			body, err := json.Marshal(p)
			require.NoError(t, err)
			res, err := checkFidelity(c.kind, body)
			require.NoError(t, err)
			errs := res.errors()
			require.Len(t, errs, 1, "%v", res.Findings)
			assert.Equal(t, c.wantKind, errs[0].Kind)
			assert.Equal(t, "$.value[1]."+strings.ReplaceAll(c.mutation, "/", "."), errs[0].Path)
		})
	}
}

func TestSimulatorErrorsFidelity(t *testing.T) {
	cfg := smallTenants(1, nil)
	e := start(t, cfg)
	tok := e.token(tenant1)
	e.sim.FailNext(graphsim.Fault{Kind: "status", Status: 503, RetryAfter: time.Second, Path: "directoryAudits"})
	bodies := map[string]response{
		"401": e.get(signInsPath, ""),
		"400": e.get(signInsPath+"?$top=0", tok),
		"503": e.get(auditsPath, tok),
	}
	e.sim.SetRoles(tenant1, graphsimtest.ClientID, nil)
	bodies["403"] = e.get(signInsPath, e.token(tenant1))
	for name, r := range bodies {
		t.Run(name, func(t *testing.T) {
			res, err := checkFidelityWith(odataerrors.CreateODataErrorFromDiscriminatorValue, r.Body)
			require.NoError(t, err)
			assert.Empty(t, res.Findings)
			main := res.Parsed.(odataerrors.ODataErrorable).GetErrorEscaped()
			assert.Equal(t, name, strconv.Itoa(r.Status))
			assert.NotEmpty(t, *main.GetCode())
			inner := main.GetInnerError()
			require.NotNil(t, inner)
			assert.Equal(t, r.Header.Get("request-id"), *inner.GetRequestId())
			assert.Equal(t, r.Header.Get("client-request-id"), *inner.GetClientRequestId())
			require.NotNil(t, inner.GetDate())
			assert.WithinDuration(t, time.Now(), *inner.GetDate(), 24*time.Hour, "parsed in some zone, but the right day")
		})
	}
}

// sdkClient is msgraph-sdk-go's client set up against the simulator: the SDK's default middleware over a
// transport that trusts the simulator, azidentity for tokens, 127.0.0.1 allowed to receive them.
func sdkClient(t *testing.T, e *env, tenant string) (*msgraphsdk.GraphServiceClient, *msgraphsdk.GraphRequestAdapter) {
	t.Helper()
	cred := e.credential(tenant, graphsimtest.ClientID, graphsimtest.Secret)
	auth, err := msgraphauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{graphsimtest.Scope}, []string{"127.0.0.1"})
	require.NoError(t, err)
	opts := msgraphsdk.GetDefaultClientOptions()
	httpClient := &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(e.client.Transport, msgraphcore.GetDefaultMiddlewaresWithOptions(&opts)...),
		Timeout:   30 * time.Second,
	}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, httpClient)
	require.NoError(t, err)
	adapter.SetBaseUrl(e.sim.URL() + "/v1.0")
	return msgraphsdk.NewGraphServiceClient(adapter), adapter
}

func TestMsgraphSDKPageIterator(t *testing.T) {
	cfg := smallTenants(1, map[string]graphsim.DatasetSpec{"signins": {Count: 40, Span: time.Hour, PerTimestamp: 3}})
	e := start(t, cfg)
	client, adapter := sdkClient(t, e, tenant1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	from, to := e.sim.Anchor().Add(-45*time.Minute), e.sim.Anchor()
	filter := "createdDateTime ge " + graphsim.FormatTime(from) + " and createdDateTime le " + graphsim.FormatTime(to)
	want := e.sim.IDs(tenant1, "signins", from, to)
	require.Greater(t, len(want), 20)

	for _, c := range []struct {
		name    string
		orderby []string
		reverse bool
	}{{"asc", []string{"createdDateTime asc"}, false}, {"default order", nil, true}} {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.sim.Requests())
			top := int32(7)
			resp, err := client.AuditLogs().SignIns().Get(ctx, &auditlogs.SignInsRequestBuilderGetRequestConfiguration{
				QueryParameters: &auditlogs.SignInsRequestBuilderGetQueryParameters{Top: &top, Filter: &filter, Orderby: c.orderby},
			})
			require.NoError(t, err)
			it, err := msgraphcore.NewPageIterator[models.SignInable](resp, adapter, models.CreateSignInCollectionResponseFromDiscriminatorValue)
			require.NoError(t, err)
			var ids []string
			require.NoError(t, it.Iterate(ctx, func(s models.SignInable) bool {
				ids = append(ids, *s.GetId())
				return true
			}))
			expected := want
			if c.reverse {
				expected = make([]string, len(want))
				for i, id := range want {
					expected[len(want)-1-i] = id
				}
			}
			assert.Equal(t, expected, ids)
			log := e.sim.Requests()[before:]
			assert.Len(t, log, (len(want)+6)/7, "one request per page")
			assert.GreaterOrEqual(t, len(log), 3)
			for _, r := range log {
				assert.Equal(t, http.StatusOK, r.Status)
				assert.Equal(t, tenant1, r.TenantID, "every page carried the token")
				q, err := url.ParseQuery(r.Query)
				require.NoError(t, err)
				assert.Equal(t, filter, q.Get("$filter"))
			}
		})
	}

	// The SDK parses the simulator's errors into its ODataError.
	e.sim.SetRoles(tenant1, graphsimtest.ClientID, nil)
	denied, _ := sdkClient(t, e, tenant1) // a new credential: a new token without roles
	_, err := denied.AuditLogs().DirectoryAudits().Get(ctx, nil)
	var odataErr *odataerrors.ODataError
	require.ErrorAs(t, err, &odataErr)
	assert.Equal(t, 403, odataErr.ResponseStatusCode)
	assert.Equal(t, "Authorization_RequestDenied", *odataErr.GetErrorEscaped().GetCode())
	assert.NotEmpty(t, *odataErr.GetErrorEscaped().GetInnerError().GetRequestId())

	// Without 127.0.0.1 among the valid hosts the SDK silently sends no token.
	cred := e.credential(tenant1, graphsimtest.ClientID, graphsimtest.Secret)
	auth, err := msgraphauth.NewAzureIdentityAuthenticationProviderWithScopes(cred, []string{graphsimtest.Scope})
	require.NoError(t, err)
	adapter2, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, e.client)
	require.NoError(t, err)
	adapter2.SetBaseUrl(e.sim.URL() + "/v1.0")
	_, err = msgraphsdk.NewGraphServiceClient(adapter2).AuditLogs().SignIns().Get(ctx, nil)
	require.ErrorAs(t, err, &odataErr)
	assert.Equal(t, 401, odataErr.ResponseStatusCode)
	assert.Equal(t, "InvalidAuthenticationToken", *odataErr.GetErrorEscaped().GetCode())
}

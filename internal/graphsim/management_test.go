package graphsim_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
)

const mgmtScope = "https://manage.office.com/.default"

func feedPath(tenant, op string) string { return "/api/v1.0/" + tenant + "/activity/feed/" + op }

func afCode(t *testing.T, r response) string {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &body), string(r.Body))
	return body.Error.Code
}

// The Management Activity API answers with its documented shapes and errors: tokens for its own
// resource only, carrying only the ActivityFeed roles; listings only with a subscription, within 24 h
// and 7 days, paged by a NextPageUri header; blobs as arrays; expired content as AF20051.
func TestManagementActivityAPI(t *testing.T) {
	e := start(t, smallTenants(1, nil))
	mgmt, graphTok := e.tokenFor(tenant1, mgmtScope), e.token(tenant1)
	require.Equal(t, "https://manage.office.com", claims(t, mgmt)["aud"])
	roles := claims(t, mgmt)["roles"].([]any)
	require.ElementsMatch(t, []any{"ActivityFeed.Read", "ActivityFeed.ReadDlp"}, roles, "a Management API token carries its own roles only")
	require.NotContains(t, claims(t, graphTok)["roles"], "ActivityFeed.Read", "a Graph token carries none of them")

	list := feedPath(tenant1, "subscriptions/content") + "?contentType=Audit.Exchange"
	require.Equal(t, http.StatusUnauthorized, e.get(list, graphTok).Status, "a Graph token is refused")
	require.Equal(t, http.StatusUnauthorized, e.get(signInsPath, mgmt).Status, "Graph refuses a Management API token")
	r := e.get(list, mgmt)
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Equal(t, "AF20022", afCode(t, r), "no subscription yet")

	req, err := http.NewRequest(http.MethodPost, e.sim.URL()+feedPath(tenant1, "subscriptions/start")+"?contentType=Audit.Exchange", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+mgmt)
	resp, err := e.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var subs []map[string]any
	require.NoError(t, json.Unmarshal(e.get(feedPath(tenant1, "subscriptions/list"), mgmt).Body, &subs))
	require.Equal(t, []map[string]any{{"contentType": "Audit.Exchange", "status": "enabled", "webhook": nil}}, subs)

	now := time.Now().UTC()
	e.sim.SetActivityPageSize(2)
	var ids []string
	for i := range 3 {
		ids = append(ids, e.sim.AddAuditBlob(tenant1, graphsim.AuditBlob{ContentType: "Audit.Exchange", Created: now.Add(-time.Duration(i+1) * time.Hour),
			Records: []map[string]any{{"Id": "r" + string(rune('a'+i)), "CreationTime": "2026-01-01T00:00:00", "RecordType": 2}}}))
	}
	gone := e.sim.AddAuditBlob(tenant1, graphsim.AuditBlob{ContentType: "Audit.Exchange", Created: now.Add(-5 * time.Hour), Expiration: now.Add(-time.Minute)})
	window := "&startTime=" + now.Add(-6*time.Hour).Format("2006-01-02T15:04:05") + "&endTime=" + now.Format("2006-01-02T15:04:05")
	r = e.get(list+window, mgmt)
	require.Equal(t, http.StatusOK, r.Status)
	next := r.Header.Get("NextPageUri")
	require.True(t, strings.HasPrefix(next, e.sim.URL()+"/api/v1.0/"+tenant1+"/activity/feed/subscriptions/content?"), next)
	var first, second []map[string]string
	require.NoError(t, json.Unmarshal(r.Body, &first))
	r2 := e.get(next, mgmt)
	require.Empty(t, r2.Header.Get("NextPageUri"), "the last page has none")
	require.NoError(t, json.Unmarshal(r2.Body, &second))
	var listed []string
	for _, b := range slices.Concat(first, second) {
		require.Equal(t, "Audit.Exchange", b["contentType"])
		require.Equal(t, e.sim.URL()+feedPath(tenant1, "audit/")+b["contentId"], b["contentUri"])
		require.NotEmpty(t, b["contentCreated"])
		require.NotEmpty(t, b["contentExpiration"])
		listed = append(listed, b["contentId"])
	}
	require.ElementsMatch(t, append(slices.Clone(ids), gone), listed)

	blob := e.get(feedPath(tenant1, "audit/"+ids[0]), mgmt)
	require.Equal(t, http.StatusOK, blob.Status)
	require.JSONEq(t, `[{"Id":"ra","CreationTime":"2026-01-01T00:00:00","RecordType":2}]`, string(blob.Body))
	r = e.get(feedPath(tenant1, "audit/"+gone), mgmt)
	require.Equal(t, "AF20051", afCode(t, r), "expired content")

	tooLong := "&startTime=" + now.Add(-25*time.Hour).Format("2006-01-02T15:04:05") + "&endTime=" + now.Format("2006-01-02T15:04:05")
	require.Equal(t, "AF20030", afCode(t, e.get(list+tooLong, mgmt)), "more than 24 h")
	tooOld := "&startTime=" + now.Add(-8*24*time.Hour).Format("2006-01-02T15:04:05") + "&endTime=" + now.Add(-7*24*time.Hour-time.Hour).Format("2006-01-02T15:04:05")
	require.Equal(t, "AF20030", afCode(t, e.get(list+tooOld, mgmt)), "more than 7 days back")
}

// With the tenant's unified audit logging off, starting a subscription answers what the API answers
// then: 400 with no documented code and "Tenant <id> does not exist" split across code and message;
// once auditing is on again, the start succeeds.
func TestManagementActivityAuditingDisabled(t *testing.T) {
	cfg := smallTenants(1, nil)
	cfg.Tenants[0].AuditingDisabled = true
	e := start(t, cfg)
	mgmt := e.tokenFor(tenant1, mgmtScope)
	startSub := func() (int, string, string) {
		req, err := http.NewRequest(http.MethodPost, e.sim.URL()+feedPath(tenant1, "subscriptions/start")+"?contentType=Audit.SharePoint", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+mgmt)
		resp, err := e.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Error.Code, body.Error.Message
	}
	status, code, msg := startSub()
	require.Equal(t, http.StatusBadRequest, status)
	require.True(t, strings.HasPrefix(code, "StartSubscription [CorrId="), code)
	require.Contains(t, code, "ContentType=Audit.SharePoint")
	require.Contains(t, msg, "DataServiceException: Tenant "+tenant1+" does not exist.")
	require.Empty(t, e.sim.Subscription(tenant1, "Audit.SharePoint"))

	e.sim.SetAuditingDisabled(tenant1, false)
	status, _, _ = startSub()
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "enabled", e.sim.Subscription(tenant1, "Audit.SharePoint"))
}

package o365receiver

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

// The receiver reports on itself to extensions such as o365_readiness through o365status.Provider.
var _ o365status.Provider = (*o365Receiver)(nil)

// registerWithExtensions offers the receiver to every extension on the host that wants to report on it.
func (r *o365Receiver) registerWithExtensions(host component.Host) {
	for _, ext := range host.GetExtensions() {
		if reg, ok := ext.(o365status.Registrar); ok {
			reg.RegisterProvider(r.set.ID, r)
			r.registrars = append(r.registrars, reg)
		}
	}
}

func (r *o365Receiver) unregisterFromExtensions() {
	for _, reg := range r.registrars {
		reg.UnregisterProvider(r.set.ID)
	}
	r.registrars = nil
}

// Tenants describes the configured tenants without their credentials.
func (r *o365Receiver) Tenants() []o365status.Tenant {
	out := make([]o365status.Tenant, 0, len(r.cfg.Tenants))
	for i := range r.cfg.Tenants {
		out = append(out, r.describeTenant(&r.cfg.Tenants[i]))
	}
	return out
}

// Tenant describes one tenant without its credentials.
func (r *o365Receiver) Tenant(name string) (o365status.Tenant, bool) {
	ts := r.byTenant[name]
	if ts == nil {
		return o365status.Tenant{}, false
	}
	return r.describeTenant(ts.cfg), true
}

// TenantStreams returns the status of the tenant's streams.
func (r *o365Receiver) TenantStreams(tenant string) []StreamStatus {
	ts := r.byTenant[tenant]
	if ts == nil {
		return nil
	}
	out := make([]StreamStatus, 0, len(ts.tasks))
	for _, tk := range ts.tasks {
		out = append(out, tk.Status())
	}
	return out
}

func (r *o365Receiver) describeTenant(t *TenantConfig) o365status.Tenant {
	ti := o365status.Tenant{Name: t.label(), TenantID: t.TenantID, ClientID: t.appID(), Cloud: t.Cloud}
	if ti.Cloud == "" {
		ti.Cloud = "public"
	}
	switch {
	case t.ManagedIdentity.HasValue():
		ti.Credential, ti.CredentialPresent = "managed_identity", true
	case t.WorkloadIdentity.HasValue():
		ti.Credential, ti.CredentialPresent = "workload_identity", true
	case t.ClientCertificatePath != "":
		ti.Credential, ti.CredentialPresent = "client_certificate", true
	default:
		ti.Credential, ti.CredentialPresent = "client_secret", t.secret() != ""
	}
	for _, ds := range r.cfg.enabledDatasets(t) {
		ti.Datasets = append(ti.Datasets, o365status.Dataset{
			Name: ds.dataset.Name, Permissions: permissions(ds.dataset, t.Datasets[ds.dataset.Name]),
			Licence: ds.dataset.Licence, Latency: ds.dataset.Latency,
		})
	}
	return ti
}

// Token describes the tenant's current access token.
func (r *o365Receiver) Token(tenant string) o365status.TokenInfo {
	c := r.clients[tenant]
	if c == nil {
		return o365status.TokenInfo{}
	}
	tok := c.Token()
	// The Management Activity API's token carries its own roles (ActivityFeed.*): readiness checks the
	// permissions of every dataset against the roles of both tokens. A tenant that collects only audit
	// datasets never asks for a Graph token: the Management API's describes it.
	if mc := r.mgmtClients[tenant]; mc != nil {
		mt := mc.Token()
		if tok.ObtainedAt.IsZero() && tok.LastError == "" {
			mt.Roles = append(slices.Clone(tok.Roles), mt.Roles...)
			return mt
		}
		tok.Roles = append(slices.Clone(tok.Roles), mt.Roles...)
	}
	return tok
}

// Probe asks Graph for one record of the dataset's first source, within the tenant's budget.
func (r *o365Receiver) Probe(ctx context.Context, tenant, dataset string) error {
	tasks, err := r.tasksOf(tenant, dataset)
	if err != nil {
		return err
	}
	tk := tasks[0]
	if tk.probe != nil {
		return tk.probe(ctx)
	}
	link := tk.sourceURL()
	if tk.ds.Kind == catalog.EventStream {
		link += "?$top=1"
	}
	req := tk.graphRequest(link)
	req.OnPause = nil // a probe may run where the tenant is not polled (a standby replica): pollers keep pauses
	return tk.client.Get(ctx, req, func(body []byte) error {
		_, err := graph.FastDecoder{}.Decode(body, pcommon.NewMap)
		return err
	})
}

// Trigger asks the tenant's streams (of one dataset, or all) to poll now.
func (r *o365Receiver) Trigger(tenant, dataset string) ([]string, error) {
	tasks, err := r.tasksOf(tenant, dataset)
	if err != nil {
		return nil, err
	}
	var started []string
	for _, tk := range tasks {
		tk.Trigger()
		started = append(started, tk.name())
	}
	sort.Strings(started)
	return started, nil
}

// tasksOf returns the tenant's streams of one dataset (all when dataset is "").
func (r *o365Receiver) tasksOf(tenant, dataset string) ([]*task, error) {
	ts := r.byTenant[tenant]
	if ts == nil {
		return nil, fmt.Errorf("%w: tenant %q", o365status.ErrNotConfigured, tenant)
	}
	var out []*task
	for _, tk := range ts.tasks {
		if dataset == "" || tk.ds.Name == dataset {
			out = append(out, tk)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: dataset %q of tenant %q", o365status.ErrNotConfigured, dataset, tenant)
	}
	return out, nil
}

// tenantStreams is a tenant and its tasks, by label (o365Receiver.byTenant): the per-tenant routes of
// the readiness extension look one tenant up among thousands.
type tenantStreams struct {
	cfg   *TenantConfig
	tasks []*task
}

package o365readinessextension

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

// fakeProvider is an o365status.Provider with fixed answers, for the tests of the HTTP layer (routes,
// auth, rate limit, status codes, escaping) where the receiver's real behaviour is not the subject.
// Every scenario about what readiness concludes runs against the real receiver and the simulator.
type fakeProvider struct {
	mu      sync.Mutex
	tenants []o365status.Tenant
	streams []o365status.StreamStatus
	tokens  map[string]o365status.TokenInfo
	probe   func(tenant, dataset string) error

	probes   atomic.Int64
	triggers []string
}

func (f *fakeProvider) Tenants() []o365status.Tenant {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tenants
}

func (f *fakeProvider) Streams() []o365status.StreamStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]o365status.StreamStatus(nil), f.streams...)
}

func (f *fakeProvider) Tenant(name string) (o365status.Tenant, bool) {
	for _, t := range f.Tenants() {
		if t.Name == name {
			return t, true
		}
	}
	return o365status.Tenant{}, false
}

func (f *fakeProvider) TenantStreams(tenant string) []o365status.StreamStatus {
	var out []o365status.StreamStatus
	for _, s := range f.Streams() {
		if s.Tenant == tenant {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeProvider) Token(tenant string) o365status.TokenInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens[tenant]
}

func (f *fakeProvider) Probe(_ context.Context, tenant, dataset string) error {
	f.probes.Add(1)
	f.mu.Lock()
	probe := f.probe
	f.mu.Unlock()
	if probe != nil {
		return probe(tenant, dataset)
	}
	return nil
}

func (f *fakeProvider) Trigger(tenant, dataset string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	known := false
	for _, s := range f.streams {
		if s.Tenant != tenant {
			continue
		}
		known = true
		if dataset == "" || s.Dataset == dataset {
			out = append(out, streamName(s))
		}
	}
	switch {
	case !known:
		return nil, fmt.Errorf("%w: tenant %q", o365status.ErrNotConfigured, tenant)
	case len(out) == 0:
		return nil, fmt.Errorf("%w: dataset %q of tenant %q", o365status.ErrNotConfigured, dataset, tenant)
	}
	f.triggers = append(f.triggers, out...)
	return out, nil
}

package o365eventsexporter

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// DatasetList is the answer of GET /datasets: the receiver's dataset catalog (internal/catalog), as is.
type DatasetList struct {
	Datasets []DatasetInfo `json:"datasets"`
}

// DatasetInfo is one dataset of the catalog.
type DatasetInfo struct {
	Name           string       `json:"name"`
	Kind           string       `json:"kind"`
	Sources        []SourceInfo `json:"sources"`
	Permissions    []string     `json:"permissions"`
	Licence        string       `json:"licence"`
	Latency        string       `json:"latency"`
	DefaultEnabled bool         `json:"default_enabled"`
	UnavailableIn  []string     `json:"unavailable_in,omitempty"`
}

// SourceInfo is one Graph collection of a dataset.
type SourceInfo struct {
	Variant    string            `json:"variant,omitempty"`
	Graph      string            `json:"graph"` // /<api version><path>
	Filter     string            `json:"filter,omitempty"`
	Query      map[string]string `json:"query,omitempty"`
	Permission string            `json:"permission"`
}

// datasetsJSON renders the catalog once: it does not change while the collector runs.
func datasetsJSON() []byte {
	var out DatasetList
	for _, d := range catalog.All() {
		info := DatasetInfo{
			Name: d.Name, Kind: d.Kind.String(), Permissions: d.Permissions(d.Sources), Licence: d.Licence,
			Latency: d.Latency, DefaultEnabled: d.DefaultEnabled, UnavailableIn: d.UnavailableIn,
		}
		for _, s := range d.Sources {
			perm := s.Permission
			if perm == "" {
				perm = d.Permission
			}
			info.Sources = append(info.Sources, SourceInfo{
				Variant: s.Variant, Graph: "/" + s.APIVersion + s.Path, Filter: s.Filter, Query: s.Query, Permission: perm,
			})
		}
		out.Datasets = append(out.Datasets, info)
	}
	b, _ := json.Marshal(out) // strings and slices only: cannot fail
	return b
}

// storedDatasets are the values GET /events/raw accepts for `dataset`: the catalog's, and the
// processor's incident candidates.
var storedDatasets = func() []string {
	set := map[string]bool{o365attr.DatasetIncidentCandidates: true}
	for _, n := range catalog.Names() {
		set[n] = true
	}
	return slices.Sorted(maps.Keys(set))
}()

package o365receiver

import (
	"slices"
	"strings"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
)

// dataset and source are the catalog's: the receiver collects what internal/catalog describes.
type (
	dataset = catalog.Dataset
	source  = catalog.Source
)

func datasetNames() string { return strings.Join(catalog.Names(), ", ") }

func signInKindNames() string { return strings.Join(catalog.SignIns.Variants(), ", ") }

// sourcesFor returns the sources a tenant reads for d (sign-in kinds filtered by `kinds`).
func sourcesFor(d *dataset, dc DatasetConfig) []source {
	if len(dc.Kinds) == 0 {
		return d.Sources
	}
	var out []source
	for _, src := range d.Sources {
		if slices.Contains(dc.Kinds, src.Variant) {
			out = append(out, src)
		}
	}
	return out
}

// permissions lists, sorted, the application permissions the tenant's sources of d need.
func permissions(d *dataset, dc DatasetConfig) []string { return d.Permissions(sourcesFor(d, dc)) }

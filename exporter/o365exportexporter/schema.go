package o365exportexporter

import (
	_ "embed"
	"slices"
)

// schemaV1 is the JSON Schema (draft 2020-12) of export_version 1, export.v1.schema.json.
//
//go:embed export.v1.schema.json
var schemaV1 []byte

// SchemaV1 returns the JSON Schema of the export documents with export_version 1 (draft 2020-12). It is
// also served by the summary server at SchemaPath.
func SchemaV1() []byte { return slices.Clone(schemaV1) }

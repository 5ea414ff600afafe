// Package o365exportexporter implements the `o365_export` exporter: it summarises the normalized records
// and IncidentCandidate records of the `o365_mapping` processor per tenant and period into the versioned
// export JSON (`export_version: 1`, schema in export.v1.schema.json), and writes the documents to a
// directory and/or POSTs them to an HTTP endpoint; an optional HTTP server serves the latest summary per
// tenant.
//
//go:generate go tool -modfile=../../internal/tools/go.mod mdatagen metadata.yaml
package o365exportexporter

// Package o365mappingprocessor implements the `o365_mapping` processor: it normalizes the raw Microsoft
// Graph records of the `o365` receiver into flat, semantic-convention attributes, maps normalized event
// types to domains, controls and metrics (mapping.yml), and correlates them into IncidentCandidate
// records (correlation.yml).
//
//go:generate go tool -modfile=../../internal/tools/go.mod mdatagen metadata.yaml
package o365mappingprocessor

// Package o365eventsexporter implements the `o365_events` exporter: a queryable event store. It keeps
// the raw Graph records of the `o365` receiver and the normalized records of the `o365_mapping`
// processor in SQLite (embedded, the default) or Postgres, keyed by o365.record.id (and the version of
// datasets that republish a record under one id) so that a page delivered again is stored once, and
// serves them over HTTP: GET /datasets, GET /events/raw and GET /events/normalized.
//
//go:generate go tool -modfile=../../internal/tools/go.mod mdatagen metadata.yaml
package o365eventsexporter

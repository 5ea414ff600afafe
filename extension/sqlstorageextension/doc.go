// Package sqlstorageextension implements the `sql_storage` extension: the collector storage API
// (go.opentelemetry.io/collector/extension/xextension/storage) over an embedded SQLite file or a shared
// Postgres database, plus leases (internal/leasing) with which several collector replicas sharing one
// Postgres split resources between them, fenced so that a replica that lost its lease cannot commit.
//
//go:generate go tool -modfile=../../internal/tools/go.mod mdatagen metadata.yaml
package sqlstorageextension

#!/usr/bin/env bash
# `make bench`: the benchmark suite of docs/benchmarks.md. Raw outputs and a summary land in
# bench-results/. Timings never gate anything; the figures go into docs/benchmarks.md by hand, with
# the machine they were measured on. COUNT (default 10) repeats the micro-benchmarks for benchstat.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench-results
mkdir -p "$out"
count=${COUNT:-10}
benchstat="go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"
export OTELCOL_O365_BIN="$PWD/_build/otelcol-o365"

step() { echo; echo "== $*"; }

step "1. ingest path: page bytes -> plog (ours, encoding/json maps, msgraph-sdk-go), one core"
go test ./internal/graph -run '^$' -bench 'BenchmarkDecodePage|BenchmarkIngestOverHTTP' -benchmem \
  -count "$count" -cpu 1 | tee "$out/ingest.txt"
$benchstat -col /decoder "$out/ingest.txt" | tee "$out/ingest-benchstat.txt"
go test ./internal/graph -run '^$' -bench 'BenchmarkPdataFloor' -benchmem -count "$count" -cpu 1 \
  | tee "$out/ingest-pdata-floor.txt"

step "2. processor: normalize + map, + correlation, + OCSF/pseudonymization"
go test ./processor/o365mappingprocessor -run '^$' -bench . -benchmem -benchtime 300000x -count "$count" \
  | tee "$out/processor.txt"

step "3. exporter: export JSON of a 100k-event tenant"
go test ./exporter/o365exportexporter -run '^$' -bench BenchmarkExportDocument -benchtime 5x | tee "$out/exporter.txt"
go test ./exporter/o365exportexporter -run '^$' -bench BenchmarkConsumeLogs -benchtime 200x -count 3 | tee -a "$out/exporter.txt"

step "4. end to end: the distribution backfills 1M sign-ins into the file exporter"
go test ./e2e -run '^$' -bench BenchmarkDistributionBackfill -benchtime 1x -timeout 60m | tee "$out/backfill.txt"

step "5. scale in tenants: 1000 and 10 000 tenants x (sign-ins, directory audits) every 5 min on one collector (~6 min each)"
go test ./e2e -run '^$' -bench BenchmarkDistributionTenantScaling -benchtime 1x -timeout 60m | tee "$out/scaling.txt"

step "6. the real ceiling: Graph budget used while catching up (latency 0.1 s, 2 s, 8 s)"
go test ./receiver/o365receiver -run '^$' -bench BenchmarkBudgetUse -benchtime 1x -timeout 60m | tee "$out/budget.txt"

step "7. CPU at the app-wide Graph ceiling: to a file, and over OTLP to a second collector (gzip, zstd; with keep_raw: false: zstd, zstd over HTTP, snappy, zstd with GOGC=400, the persistent queue in sql_storage and in file_storage)"
go test ./e2e -run '^$' -bench BenchmarkDistributionAtGraphCeiling -benchtime 1x -timeout 60m | tee "$out/ceiling.txt"

step "8. o365_events: records/s stored (SQLite, Postgres), query p50/p99 at 1M and 10M records (10M takes ~1 h)"
go test ./exporter/o365eventsexporter -run '^$' -bench BenchmarkStore -benchtime 40x -timeout 30m | tee "$out/events-store.txt"
go test ./exporter/o365eventsexporter -run '^$' -bench BenchmarkQuery -benchtime 1x -timeout 180m | tee "$out/events-query.txt"
go test ./exporter/o365eventsexporter -run '^$' -bench BenchmarkRetentionBeyond -benchtime 3x -timeout 30m | tee "$out/events-retention.txt"

{
  echo "# bench-results/summary.md — $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  for f in ingest-benchstat processor exporter backfill scaling budget ceiling events-store events-query events-retention; do
    echo; echo "## $f"; echo '```'; grep -E '^(Benchmark|goos|cpu|│|[ a-z_]+ +│)|^\s*(ours|std|msgraph|decoder)' "$out/$f.txt" || cat "$out/$f.txt"; echo '```'
  done
} > "$out/summary.md"
echo; echo "summary: $out/summary.md"

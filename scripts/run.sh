#!/usr/bin/env bash
# Starts the Graph simulator and the otelcol-o365 distribution built by `make build`, wired together by
# collector-config.yaml. Ctrl-C stops both. Output: run/o365-raw.json and run/o365-normalized.json
# (OTLP JSON, one batch a line), and the o365_events store run/o365-events.db, queried on :13136.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p run
rm -f run/graphsim-ca.pem
# The output files and the collector's state are kept across runs. So is the simulated world: its
# anchor (the start of its live traffic) is the first run's start, so a restarted simulator serves the
# same records at the same times, and what "arrived" while the demo was down, as Graph would — and the
# restarted collector's resumption is what run/o365-raw.json shows (scripts/count-records.sh counts the
# duplicates). `rm -rf run` starts afresh.
[ -s run/graphsim-anchor ] || date -u +%Y-%m-%dT%H:%M:%S.%3NZ > run/graphsim-anchor
anchor=$(cat run/graphsim-anchor)
echo "graphsim: simulated world since $anchor (rm -rf run to start afresh)"

./bin/graphsim -addr 127.0.0.1:8443 -ca-out run/graphsim-ca.pem -anchor "$anchor" &
sim=$!
trap 'kill "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 50); do
  [ -s run/graphsim-ca.pem ] && break
  kill -0 "$sim" 2>/dev/null || { echo "graphsim failed to start (is 127.0.0.1:8443 in use?)" >&2; exit 1; }
  sleep 0.1
done

echo "otelcol-o365: raw records -> $(pwd)/run/o365-raw.json, normalized records and incidents -> $(pwd)/run/o365-normalized.json; event store: http://127.0.0.1:13136/events/normalized?tenant_id=contoso (Authorization: Bearer \$O365_ADMIN_TOKEN, default demo-admin-token); health: http://127.0.0.1:13133/"
./_build/otelcol-o365 --config collector-config.yaml

#!/usr/bin/env bash
# `make soak`: the long forms of the reliability suite (e2e/reliability with O365_SOAK=1: 20 kill -9 of a
# 200k backfill, a 2 min downstream refusal, 1 min token-endpoint and storage outages, ...) and SOAK_FUZZTIME
# (default 2m) of fuzzing per target, then the summary table (scenario, runs, lost, duplicated,
# violations) with the command, the machine and the date, as docs/reliability.md records it. Raw output:
# soak-results/.
set -uo pipefail
cd "$(dirname "$0")/.."
out=soak-results
mkdir -p "$out"
report="$PWD/$out/summary.tsv"
: >"$report"
export OTELCOL_O365_BIN="$PWD/_build/otelcol-o365"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
rc=0

echo "== reliability scenarios, long forms (log: $out/reliability.log)"
O365_SOAK=1 O365_RELIABILITY_REPORT="$report" go test -count=1 -timeout 4h -v ./e2e/reliability/ >"$out/reliability.log" 2>&1 || rc=1
grep -E '^(--- |=== RUN|ok|FAIL|PASS)|RESULT' "$out/reliability.log" | grep -v '=== RUN' || true

echo "== fuzzing, ${SOAK_FUZZTIME:-2m} per target"
FUZZTIME="${SOAK_FUZZTIME:-2m}" O365_RELIABILITY_REPORT="$report" ./scripts/fuzz.sh | tee "$out/fuzz.log" || rc=1

{
  echo
  echo "Soak summary — make soak, started $started, finished $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2 " GiB"}') RAM, $(go version | cut -d' ' -f3-4), $(uname -sr)"
  echo
  printf 'scenario\truns\tlost\tduplicated\tviolations\tnote\n' | cat - "$report" | column -t -s $'\t'
  echo
  awk -F'\t' 'NR>0 { runs+=$2; lost+=$3; dup+=$4; vio+=$5 } END { printf "total: %d scenario rows, lost %d, duplicated %d, violations %d\n", NR, lost, dup, vio }' "$report"
  [ $rc -eq 0 ] && echo "result: PASS" || echo "result: FAIL (see $out/reliability.log and $out/fuzz.log)"
} | tee "$out/summary.txt"
exit $rc

#!/usr/bin/env bash
# Runs every fuzz target of the page decoder and the normalizers for FUZZTIME each (default 5s; make soak
# uses longer) and prints one line per target: package, target, executions, result. A target that finds
# a crash or a failed property fails the script; go test has then written the input to the package's
# testdata/fuzz/<target>/ — fix the bug and commit that file with the fix (it stays a regression seed).
# The seed corpora live in testdata/fuzz/<target>/ and run in every plain `go test`.
# With O365_RELIABILITY_REPORT set, one row per target is appended to it for the soak summary.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-5s}
GO=${GO:-go}
packages=(./internal/graph ./processor/o365mappingprocessor)
failed=0
printf '%-36s %-40s %12s  %s\n' package target execs result
for pkg in "${packages[@]}"; do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$pkg"/*_test.go | sed 's/^func //' | sort); do
    out=$("$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1)
    rc=$?
    execs=$(printf '%s\n' "$out" | grep -o 'execs: [0-9]*' | tail -1 | grep -o '[0-9]*' || true)
    result=ok
    if [ $rc -ne 0 ]; then
      result=FAILED
      failed=1
      printf '%s\n' "$out" | tail -40 >&2
    fi
    printf '%-36s %-40s %12s  %s\n' "$pkg" "$target" "${execs:-0}" "$result"
    if [ -n "${O365_RELIABILITY_REPORT:-}" ]; then
      printf '8 bad data: fuzz %s\t%s\t0\t0\t%s\t%s for %s, 0 panics expected\n' "$target" "${execs:-0}" \
        "$([ "$result" = ok ] && echo 0 || echo 1)" "$pkg" "$FUZZTIME" >>"$O365_RELIABILITY_REPORT"
    fi
  done
done
exit $failed

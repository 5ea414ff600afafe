#!/usr/bin/env bash
# Counts the records the demo's raw file exporter wrote, across every `make run`, and the duplicates
# among them:
#   scripts/count-records.sh [file]        (default run/o365-raw.json; `make count`)
# The files `rotation` moved aside (<name>-<time>.json) are counted with the file. Per dataset of the
# event streams: records; duplicates — records whose dataset, kind, o365.record.id and time were written
# before (what exactly-once rules out); later versions — records whose id was written before with another
# time: an alert's or risk detection's update (one record per version, by design), but for sign-ins and
# directory audits, which Graph never updates, an event that came back. Snapshot items (role
# assignments, policies, MFA registrations) are read whole at every poll by design (labelled by
# o365.change) and counted apart. A line a kill -9 cut short is counted as unreadable.
set -euo pipefail
file=${1:-run/o365-raw.json}
command -v jq >/dev/null || { echo "count-records.sh needs jq (Debian: apt-get install jq)" >&2; exit 1; }
[ -e "$file" ] || { echo "count-records.sh: no $file (start the demo with make run)" >&2; exit 1; }

shopt -s nullglob
backups=("${file%.json}"-*.json)
cat "${backups[@]}" "$file" | jq -rR '
  (try fromjson catch null) as $doc
  | if $doc == null then "unreadable"
    else $doc.resourceLogs[]
      | ([.resource.attributes[] | {(.key): .value.stringValue}] | add) as $res
      | .scopeLogs[].logRecords[]
      | ([.attributes[] | {(.key): .value.stringValue}] | add // {}) as $attr
      | if $attr["o365.snapshot.time"] then "snapshot"
        else "event\t\($res["o365.dataset"])|\($attr["o365.record.kind"] // "")|\($attr["o365.record.id"])|\(.timeUnixNano)"
        end
    end' | awk -F'\t' '
  $1 == "unreadable" { unreadable++ }
  $1 == "snapshot"   { snapshot++ }
  $1 == "event" {
    split($2, k, "|"); ds = k[1]; id = ds "|" k[2] "|" k[3]
    records[ds]++
    if (seen[$2]++) duplicates[ds]++
    else if (id in first) versions[ds]++
    else first[id] = 1
  }
  END {
    printf "%-28s %9s %11s %15s\n", "dataset", "records", "duplicates", "later versions"
    n = 0
    for (ds in records) names[++n] = ds
    for (i = 2; i <= n; i++) for (j = i; j > 1 && names[j-1] > names[j]; j--) { t = names[j]; names[j] = names[j-1]; names[j-1] = t }
    for (i = 1; i <= n; i++) {
      ds = names[i]; total += records[ds]; dups += duplicates[ds]
      printf "%-28s %9d %11d %15d\n", ds, records[ds], duplicates[ds], versions[ds]
    }
    printf "%-28s %9d %11s %15s\n", "snapshot items", snapshot, "-", "-"
    printf "%-28s %9d %11d\n", "total", total + snapshot, dups
    if (unreadable) printf "unreadable lines: %d\n", unreadable
  }'

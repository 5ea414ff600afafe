#!/usr/bin/env bash
# Builds the .deb and .rpm packages of the otelcol-o365 binary with nfpm (pinned in internal/tools):
#   scripts/package.sh [binary] [output directory]      (defaults: _build/otelcol-o365, dist)
# `make package` runs it after `make build`; e2e/shipping tests it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-_build/otelcol-o365}")
out=${2:-dist}
GO=${GO:-go}
[ -x "$bin" ] || { echo "package.sh: $bin is not an executable (run make build)" >&2; exit 1; }

# One home for the version: the ocb manifest's dist.version.
version=$(sed -n 's/^  version: *//p' builder-config.yaml)
[ -n "$version" ] || { echo "package.sh: no dist.version in builder-config.yaml" >&2; exit 1; }
mkdir -p "$out"
for packager in deb rpm; do
  OTELCOL_O365_BIN=$bin VERSION=$version GOARCH=$($GO env GOARCH) \
    $GO tool -modfile=internal/tools/go.mod nfpm package --config packaging/nfpm.yaml --packager "$packager" --target "$out/"
done

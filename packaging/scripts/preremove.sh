#!/bin/sh
# otelcol-o365 prerm (.deb: "remove" | "upgrade" …) / %preun (.rpm: 0 = erase, 1 = upgrade).
# On removal (not on upgrade) stops and disables the service.
set -e

case "$1" in
  remove|0) ;;
  *) exit 0 ;;
esac

if command -v systemctl >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    systemctl stop otelcol-o365.service || true
  fi
  systemctl disable otelcol-o365.service || true
fi

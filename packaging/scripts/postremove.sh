#!/bin/sh
# otelcol-o365 postrm (.deb: "remove" | "purge" | "upgrade" …) / %postun (.rpm: 0 = erase, 1 = upgrade).
# Reloads systemd after the unit is gone; a .deb purge also deletes the state directory (watermarks,
# event store, exports). The system user stays, as Debian's policy asks (files may still carry its id);
# an .rpm erase keeps the state too, as rpm has no purge.
set -e

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi

if [ "$1" = purge ]; then
  rm -rf /var/lib/otelcol-o365
fi

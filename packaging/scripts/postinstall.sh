#!/bin/sh
# otelcol-o365 postinst (.deb: "configure" [old version]) / %post (.rpm: 1 = install, 2 = upgrade).
# Creates the service's system user, reloads systemd, enables the service on first install without
# starting it (the tenant's credentials go into /etc/otelcol-o365/otelcol-o365.env first), and restarts
# it on upgrade if it was running.
set -e

case "$1" in
  configure) [ -z "$2" ] && first_install=1 || first_install=0 ;;
  1) first_install=1 ;;
  2) first_install=0 ;;
  *) exit 0 ;; # abort-upgrade, abort-remove, ...
esac

if ! getent group otelcol-o365 >/dev/null; then
  groupadd --system otelcol-o365
fi
if ! getent passwd otelcol-o365 >/dev/null; then
  useradd --system --gid otelcol-o365 --home-dir /var/lib/otelcol-o365 --no-create-home \
    --shell /usr/sbin/nologin --comment "otelcol-o365 collector" otelcol-o365
fi

if command -v systemctl >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
  fi
  if [ "$first_install" = 1 ]; then
    # Works without a running systemd too (a chroot, an image build): it only creates the symlink.
    systemctl enable otelcol-o365.service || true
    echo "otelcol-o365: fill in /etc/otelcol-o365/otelcol-o365.env, then: systemctl start otelcol-o365"
  elif [ -d /run/systemd/system ]; then
    systemctl try-restart otelcol-o365.service || true
  fi
fi

#!/usr/bin/env bash
# Debian packages of the real components the tests drive, installed when missing: Chromium for the
# console's browser tests (Playwright never downloads a browser), promtool and Prometheus for the
# ops tests, PostgreSQL 15 + PostGIS for the store tests. Needs root and apt-get (as on CI);
# elsewhere it says what to install and leaves it to you.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v promtool >/dev/null || need+=(prometheus)
[ -f /usr/share/postgresql/15/extension/postgis.control ] || need+=(postgresql postgresql-15-postgis-3)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
else
  echo "missing Debian packages for the tests: ${need[*]} (apt-get install them as root)" >&2
fi

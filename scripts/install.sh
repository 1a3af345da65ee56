#!/usr/bin/env bash
# Install the project from the lock: every Python package pinned with its hash (requirements/lock.txt),
# the project itself without touching the index again, and the console's front-end assets from the
# npm lock (package-lock.json, `npm ci`). Used by demo.sh and test.sh.
# To update the lock: see README "Dependencies and the lock".
set -euo pipefail
cd "$(dirname "$0")/.."
pip=(python3 -m pip --disable-pip-version-check --quiet)
bash scripts/install_lock.sh requirements/lock.txt
"${pip[@]}" install --no-deps --no-build-isolation -e .
npm ci --no-audit --no-fund --silent
bash scripts/console_assets.sh

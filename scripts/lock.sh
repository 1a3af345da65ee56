#!/usr/bin/env bash
# Regenerate the Python locks from pyproject.toml (needs uv: `python3 -m pip install uv`).
#   requirements/lock.txt     everything for tests and the demo (extras: dev), with the build backend
#   requirements/runtime.txt  the service alone (the Docker image)
# Pass --upgrade to move every pin to the newest release; otherwise existing pins are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--generate-hashes --universal --python-version 3.11 --quiet "$@")
uv pip compile pyproject.toml requirements/build.in --extra dev -o requirements/lock.txt "${common[@]}"
uv pip compile pyproject.toml requirements/build.in -o requirements/runtime.txt "${common[@]}"

#!/usr/bin/env bash
# The demo command: install, start local Kafka and the service, send sample readings, report.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]'
exec em-service demo "$@"

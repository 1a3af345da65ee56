#!/usr/bin/env bash
# The demo command: install, start local Kafka and the service, send sample readings, report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec em-service demo "$@"

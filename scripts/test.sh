#!/usr/bin/env bash
# The test command: install the project and its test tools, lint, check contracts, run all tests.
# Tests that need Kafka start a local broker themselves (or reuse one on EM_KAFKA_PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
bash scripts/install.sh
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m em_service.contracts.schema_export --check
python3 -m pytest -q -p no:cacheprovider "$@"

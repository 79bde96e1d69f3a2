#!/usr/bin/env bash
# Install everything the tests need (apt, pip, npm) and run the whole suite: lint, types, tests.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k digest`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/python -m pytest "$@"

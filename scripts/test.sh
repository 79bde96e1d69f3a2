#!/usr/bin/env bash
# Install everything the tests need (apt, pip, npm) and run the whole suite: lint, types, tests.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k digest`.  Every stage runs even when an
# earlier one fails, so one run reports everything; the exit status is non-zero if any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev || exit 1
status=0
echo "== ruff";  .venv/bin/ruff check src tests bench || status=1
echo "== mypy";  .venv/bin/mypy || status=1
echo "== pytest"; .venv/bin/python -m pytest "$@" || status=1
if [ "$#" -eq 0 ]; then
    echo "== pytest tests/console on PostgreSQL"
    bash scripts/with-postgres.sh .venv/bin/python -m pytest tests/console || status=1
else
    echo "== PostgreSQL stage skipped (arguments given): bash scripts/with-postgres.sh .venv/bin/python -m pytest tests/console"
fi
exit $status

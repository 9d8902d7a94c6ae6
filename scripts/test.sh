#!/usr/bin/env bash
# The project's test command; CI (.ci/run) and the README both run it.
#
#   scripts/test.sh                 # the default suite (pyproject's addopts leave out -m slow)
#   scripts/test.sh tests/contracts # extra arguments go to pytest
#
# PostgreSQL tests need OPENAML_TEST_POSTGRES_URL: `eval "$(scripts/start-postgres.sh)"` first.
# Exits with pytest's code; "no tests collected" (pytest's 5) is reported as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
"$PYTHON" -m pytest -q -x --timeout=600 "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "scripts/test.sh: pytest collected no tests (exit 5); that is a failure, not a pass" >&2
fi
exit $rc

#!/usr/bin/env bash
# Installs, starts PostgreSQL for the store's contract tests, and runs the default test suite.
# This is the README's test command; CI (.ci/run) calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
echo "== ruff" >&2
.venv/bin/ruff check src tests $( [ -d bench ] && echo bench )
echo "== mypy" >&2
.venv/bin/mypy src/openaml/entities src/openaml/sdk src/openaml/server src/openaml/cli src/openaml/dsl src/openaml/tracking src/openaml/compute src/openaml/runner src/openaml/_load.py
eval "$(scripts/start-postgres.sh)"
export OPENAML_TEST_POSTGRES_URL
exec scripts/test.sh "$@"

#!/usr/bin/env bash
# Installs, starts PostgreSQL for the store's contract tests, and runs the default test suite.
# This is the README's test command; CI (.ci/run) calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# Azurite (npm) for the azure_blob datastore tests; moto's S3 server comes with the test extra
bash scripts/install-azurite.sh
echo "== ruff" >&2
.venv/bin/ruff check src tests $( [ -d bench ] && echo bench )
echo "== mypy" >&2
# services/ whole (it returns the typed records of records.py, checked here with them)
.venv/bin/mypy src/openaml/entities src/openaml/sdk src/openaml/server src/openaml/cli src/openaml/dsl \
  src/openaml/tracking src/openaml/datastores src/openaml/compute src/openaml/runner src/openaml/store src/openaml/_load.py \
  src/openaml/records.py src/openaml/services src/openaml/serving src/openaml/parallel src/openaml/rai src/openaml/automl
# The contract suites (tests/contracts: one per port) run inside the default suite on every backend
# available here: local processes and folders, SQLite, and PostgreSQL (started here; with CI=true a
# missing PostgreSQL fails the postgres tests instead of skipping them). pytest ends with a
# "contract tests per backend" section counting passed/skipped/failed per backend.
eval "$(scripts/start-postgres.sh)"
export OPENAML_TEST_POSTGRES_URL
exec scripts/test.sh "$@"

#!/usr/bin/env bash
# Installs, starts PostgreSQL for the store's contract tests, and runs the default test suite.
# This is the README's test command; CI (.ci/run) calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
echo "== ruff" >&2
.venv/bin/ruff check src tests $( [ -d bench ] && echo bench )
echo "== mypy" >&2
# services/: the modules with no errors (the job core, scheduler, datastore and upload modules are
# being reworked; add them here once clean)
SERVICES_CLEAN=(__init__.py _actor.py _context.py _schedule_times.py _sweep_policies.py _sweep_sampling.py
  components.py computes.py data.py endpoints.py environments.py models.py schedules.py users.py
  _job_core.py kinds jobs.py _pipeline_graph.py _pipeline_nested.py _runner_files.py runners.py)
.venv/bin/mypy src/openaml/entities src/openaml/sdk src/openaml/server src/openaml/cli src/openaml/dsl \
  src/openaml/tracking src/openaml/datastores src/openaml/compute src/openaml/runner src/openaml/store src/openaml/_load.py "${SERVICES_CLEAN[@]/#/src/openaml/services/}"
# The contract suites (tests/contracts: one per port) run inside the default suite on every backend
# available here: local processes and folders, SQLite, and PostgreSQL (started here; with CI=true a
# missing PostgreSQL fails the postgres tests instead of skipping them). pytest ends with a
# "contract tests per backend" section counting passed/skipped/failed per backend.
eval "$(scripts/start-postgres.sh)"
export OPENAML_TEST_POSTGRES_URL
exec scripts/test.sh "$@"

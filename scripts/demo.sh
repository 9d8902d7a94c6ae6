#!/usr/bin/env bash
# Installs openaml and runs the Titanic demo end to end on the embedded default (one local server
# with SQLite, a folder datastore and local processes): data asset -> training job -> model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/openaml demo titanic "$@"

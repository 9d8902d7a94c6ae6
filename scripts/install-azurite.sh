#!/usr/bin/env bash
# Installs Azurite (the Azure Storage emulator, npm package `azurite`) into .tools/azurite, for the
# azure_blob datastore tests (tests/datastores_servers.py starts it on a free loopback port) and
# bench/datastores.py. Needs node and npm; without them it says so and exits 0 unless CI=true.
# Idempotent: an installed Azurite of the pinned version is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${OPENAML_AZURITE_VERSION:-3.37.0}"
PREFIX=.tools/azurite
if [[ -x "$PREFIX/node_modules/.bin/azurite-blob" ]] \
   && grep -q "\"version\": \"$VERSION\"" "$PREFIX/node_modules/azurite/package.json" 2>/dev/null; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  if [[ "${CI:-}" == "true" ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "install-azurite.sh: npm not found; azure_blob datastore tests will be skipped (apt-get install nodejs npm)" >&2
    exit 0
  fi
fi
mkdir -p "$PREFIX"
npm install --silent --no-audit --no-fund --prefix "$PREFIX" "azurite@$VERSION" >&2

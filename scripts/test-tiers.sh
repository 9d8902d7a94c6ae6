#!/usr/bin/env bash
# The test tiers that the default suite leaves out, each in its own pytest process (after
# scripts/check.sh has installed .venv). CI (.ci/run) runs the tiers that fit its hour:
#
#   scripts/test-tiers.sh browser ray rai   # what CI runs after the default suite (about 12 min)
#   scripts/test-tiers.sh slow            # the long end-to-end tests (examples, conformance, AutoML,
#                                         # distributed torch, restarts), locally
#
#   browser: the studio in Debian's chromium driven by Playwright (tests/browser; apt-get install chromium)
#   rai:     the Responsible AI pipelines (housing, titanic chapter 8, Azure's CLI housing sample) on a server,
#            warm and cold (tests/test_rai_pipelines.py, tests/test_rai_warm.py, tests/test_rai_review16.py)
#   ray:     the ray compute backend against a local Ray cluster the tests start (tests/ray and the
#            compute contract suite on the ray backend): jobs, distributed jobs on distinct nodes, the
#            ray distribution's own per-job clusters (torn down after), then the node-loss test last
#   slow:    tests marked slow
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -gt 0 ]] || { echo "usage: scripts/test-tiers.sh browser|ray|rai|slow ..." >&2; exit 2; }
for tier in "$@"; do
  start=$(date +%s)
  echo "== tier $tier" >&2
  case "$tier" in
    browser) scripts/test.sh -m browser tests/browser ;;
    ray)     eval "$(scripts/start-postgres.sh)"  # tests/ray/test_ray_leader_failover.py: two servers on PostgreSQL
             scripts/test.sh -m ray tests/contracts/test_compute_contract.py tests/ray ;;  # tests/ray last: its node-loss test kills the worker node
    slow)    scripts/test.sh -m slow ;;
    rai)     scripts/test.sh -m rai tests/test_rai_pipelines.py tests/test_rai_warm.py tests/test_rai_review16.py ;;
    *) echo "scripts/test-tiers.sh: unknown tier $tier (browser, ray, rai, slow)" >&2; exit 2 ;;
  esac
  echo "== tier $tier passed in $(( $(date +%s) - start )) s" >&2
done

#!/usr/bin/env bash
# Installs openaml into ./.venv from requirements.lock (one resolve of pyproject.toml with the test and ray
# extras), compiled to bytecode, then runs pip check. Needs only python3 (3.11+) with pip.
#
# Whenever pyproject.toml's dependencies change, regenerate and commit the lock:
#     uv pip compile pyproject.toml --extra test --extra ray --python-version 3.11 -o requirements.lock
# (existing pins are kept; with CI=true this script fails when the committed lock is stale).
#
# Optional: --with-torch (or OPENAML_WITH_TORCH=1; implied by CI=true) also installs PyTorch's CPU build,
# which bayesian sweeps use (Optuna's GPSampler; without it they fall back to TPE and say so). torch is
# installed with pip, not uv: pip reads the machine's pip configuration (a local CPU wheel, an index);
# uv would resolve the multi-GB CUDA build. OPENAML_TORCH_SPEC (default torch==2.13.0) and
# OPENAML_TORCH_PIP_ARGS (e.g. "--index-url https://download.pytorch.org/whl/cpu") adjust it.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TORCH="${OPENAML_WITH_TORCH:-}"
[[ "${CI:-}" == "true" && -z "$WITH_TORCH" ]] && WITH_TORCH=1
for arg in "$@"; do
  case "$arg" in
    --with-torch) WITH_TORCH=1 ;;
    --no-torch) WITH_TORCH=0 ;;
    *) echo "install.sh: unknown argument $arg (use --with-torch or --no-torch)" >&2; exit 2 ;;
  esac
done

T0=$(date +%s)
step() { echo "== [$(( $(date +%s) - T0 ))s] $*" >&2; }
LOCK_CMD=(pip compile pyproject.toml --extra test --extra ray --python-version 3.11)

step "uv"
uv_pin="$(grep -E '^uv==' requirements.lock || echo uv)"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$uv_pin"
# Run the uv binary itself: as `python3 -m uv`, uv's pip commands would target python3's own
# environment instead of .venv.
UV_BIN="$(python3 -c 'import uv; print(uv.find_uv_bin())')"
uv() { "$UV_BIN" "$@"; }

if [[ "${CI:-}" == "true" ]]; then
  step "requirements.lock is up to date with pyproject.toml"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  cp requirements.lock "$tmp/requirements.lock"
  uv "${LOCK_CMD[@]}" --quiet -o "$tmp/requirements.lock"
  pins() { grep -E '^[A-Za-z0-9]' "$1" | sed 's/[[:space:]].*//' | sort; }
  if ! diff <(pins requirements.lock) <(pins "$tmp/requirements.lock") > "$tmp/lock.diff"; then
    echo "requirements.lock is stale: pyproject.toml's dependencies changed. Regenerate and commit it:" >&2
    echo "    uv ${LOCK_CMD[*]} -o requirements.lock" >&2
    cat "$tmp/lock.diff" >&2
    exit 1
  fi
fi

step "venv from requirements.lock"
uv venv --quiet --allow-existing --python "$(command -v python3)" .venv
VENV_PY="$PWD/.venv/bin/python"
# --compile-bytecode: some machines set PYTHONDONTWRITEBYTECODE, and MLflow then costs ~10 s of
# compilation at every server start.
uv pip install --python "$VENV_PY" --quiet --compile-bytecode -r requirements.lock
uv pip install --python "$VENV_PY" --quiet --no-deps -e .
# an editable install is not compiled: compile openaml's own sources too, or a CLI call on such a
# machine compiles the ~25 modules it imports every time (~0.05-0.1 s of a 0.3 s command)
"$VENV_PY" -m compileall -q -j 0 src/openaml > /dev/null
uv pip check --python "$VENV_PY"
if [[ "$WITH_TORCH" == "1" ]]; then
  step "torch (CPU build, through pip) for bayesian sweeps"
  uv pip install --python "$VENV_PY" --quiet pip
  # greenlet lets Optuna's GPSampler run its L-BFGS-B restarts in batch (about twice as fast here)
  # shellcheck disable=SC2086
  "$VENV_PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    ${OPENAML_TORCH_PIP_ARGS:-} "${OPENAML_TORCH_SPEC:-torch==2.13.0}" "greenlet>=3.0"
  uv pip check --python "$VENV_PY"
fi
step "installed: .venv/bin/openaml"

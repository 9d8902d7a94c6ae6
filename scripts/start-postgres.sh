#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the test suite and print how to reach it.
#
#   eval "$(scripts/start-postgres.sh)"     # sets OPENAML_TEST_POSTGRES_URL
#   scripts/start-postgres.sh --stop        # stops it (the cluster folder stays, for a fast restart)
#
# - Installs Debian's postgresql with apt-get when no server binary is found (CI's fresh machine).
# - The cluster lives in $OPENAML_PG_DIR (default /tmp/openaml-pg), owned by a non-root user:
#   postgres refuses to run as root, so as root it runs as the `postgres` system user (created
#   by the Debian package; created here if missing).
# - Listens on 127.0.0.1 only, on a free port, with its unix socket in the same folder.
# - Durability is off (fsync, synchronous_commit, full_page_writes): a test server, not a home
#   for data.
# - Idempotent: when the server is already up it only prints the export line (well under a second).
#
# Only the `export OPENAML_TEST_POSTGRES_URL=...` line goes to stdout; progress goes to stderr.
set -euo pipefail

PG_DIR="${OPENAML_PG_DIR:-/tmp/openaml-pg}"
DATA="$PG_DIR/data"
LOG="$PG_DIR/server.log"
ROLE="openaml"
PASSWORD="openaml"

log() { echo "start-postgres: $*" >&2; }

find_bindir() {
  local d
  # Debian keeps the server binaries out of PATH, one folder per major version; newest first.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [[ -x "$d/postgres" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return 0; fi
  done
  if command -v postgres >/dev/null && command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(readlink -f "$(command -v postgres)")"; return 0
  fi
  return 1
}

BINDIR="$(find_bindir || true)"
if [[ -z "$BINDIR" ]]; then
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    log "no PostgreSQL server binary found; install Debian's 'postgresql' package (needs root and apt-get)"
    exit 1
  fi
  log "installing postgresql with apt-get (no server binary found)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # The package's post-install would create and start a cluster of its own: we don't need it.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/00-openaml.conf
  apt-get install -y -qq --no-install-recommends postgresql >&2
  BINDIR="$(find_bindir)" || { log "postgresql installed but no server binary found"; exit 1; }
fi

# Run as a non-root user: the `postgres` system user when we are root, ourselves otherwise.
cd /  # the server user may not be allowed into the caller's folder
if [[ "$(id -u)" == 0 ]]; then
  RUN_USER=postgres
  if ! id -u "$RUN_USER" >/dev/null 2>&1; then
    log "creating system user $RUN_USER"
    useradd --system --home-dir "$PG_DIR" --shell /usr/sbin/nologin "$RUN_USER"
  fi
  as_pg() { runuser -u "$RUN_USER" -- "$@"; }
else
  RUN_USER="$(id -un)"
  as_pg() { "$@"; }
fi

# The running server's port: line 4 of postmaster.pid.
server_port() { sed -n 4p "$DATA/postmaster.pid" 2>/dev/null; }

print_url() {
  local port
  port="$(server_port)"
  echo "export OPENAML_TEST_POSTGRES_URL=postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$port/postgres"
}

# pg_ctl's view, less a postmaster that was killed but not yet reaped (a zombie still has its pid).
is_running() {
  [[ -d "$DATA" ]] && as_pg "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1 || return 1
  local pid
  pid="$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null)"
  [[ -n "$pid" ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

is_ready() {
  is_running && [[ -n "$(server_port)" ]] \
    && "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$(server_port)" >/dev/null 2>&1
}

if [[ "${1:-}" == "--stop" ]]; then
  if is_running; then
    as_pg "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >&2
  fi
  exit 0
fi

if is_ready; then
  log "already running on port $(server_port)"
  print_url
  exit 0
fi

mkdir -p "$PG_DIR"
chown "$RUN_USER" "$PG_DIR"
chmod 700 "$PG_DIR"

if [[ ! -s "$DATA/PG_VERSION" ]]; then
  log "initdb in $DATA ($("$BINDIR/postgres" --version))"
  rm -rf "$DATA"
  pwfile="$PG_DIR/pwfile"
  echo "$PASSWORD" > "$pwfile"
  chown "$RUN_USER" "$pwfile"
  as_pg "$BINDIR/initdb" -D "$DATA" -U "$ROLE" --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --no-locale --no-instructions >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
  rm -f "$pwfile"
fi

# A stale postmaster.pid (server killed) would make pg_ctl refuse to start.
if [[ -f "$DATA/postmaster.pid" ]] && ! is_running; then
  rm -f "$DATA/postmaster.pid"
fi

if ! is_running; then
  # A free port, chosen by the OS. Another process could take it before postgres binds it:
  # then pg_ctl fails and we try another.
  for _try in 1 2 3 4 5; do
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    log "starting on 127.0.0.1:$port"
    if as_pg "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start -o \
        "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c max_connections=200 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off" >&2; then
      break
    fi
    tail -n 20 "$LOG" >&2 || true
    port=""
  done
  [[ -n "${port:-}" ]] || { log "could not start postgres; see $LOG"; exit 1; }
fi

for _ in $(seq 1 300); do
  if is_ready; then print_url; exit 0; fi
  sleep 0.1
done
log "postgres did not become ready; see $LOG"
exit 1

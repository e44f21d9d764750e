#!/usr/bin/env bash
# Private PostgreSQL cluster for development and tests (trust auth, 127.0.0.1 only).
#
#   deploy/local/postgres.sh up|down|status|url
#
# Installs the Debian 'postgresql' package when the server binaries are missing and we
# are root. PostgreSQL refuses to run as root, so as root the cluster belongs to the
# 'postgres' OS user and initdb/pg_ctl run through 'runuser -u postgres --'.
# The cluster is tuned for tests (fsync off): never keep data you care about in it.
#
# Environment (all optional):
#   PG_PORT      TCP port on 127.0.0.1                        (default 55432)
#   PG_DATA_DIR  cluster directory (default var/postgres in the repo, or
#                /tmp/ledgerstream-pg-<port> when the postgres user cannot reach the repo)
#   PG_BIN       directory holding initdb, pg_ctl, psql, pg_isready
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PORT=${PG_PORT:-55432}
DB=ledgerstream
URL="postgresql+psycopg://$DB@127.0.0.1:$PORT/$DB"

say() { echo "postgres.sh: $*"; }
die() { echo "postgres.sh: error: $*" >&2; exit 1; }

is_root() { [[ $(id -u) -eq 0 ]]; }

# Run a command as the cluster owner (from /, which every user can enter).
as_owner() {
  if is_root; then (cd / && runuser -u postgres -- "$@"); else (cd / && "$@"); fi
}

# Newest /usr/lib/postgresql/<ver>/bin, else wherever initdb is on PATH.
find_bin() {
  local d
  if [[ -n ${PG_BIN:-} ]]; then echo "$PG_BIN"; return 0; fi
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n $d && -x $d/initdb ]]; then echo "$d"; return 0; fi
  d=$(command -v initdb 2>/dev/null) || return 1
  dirname "$(readlink -f "$d")"
}

ensure_installed() {
  BIN=$(find_bin) && [[ -x $BIN/pg_ctl ]] && return 0
  is_root || die "PostgreSQL server binaries not found; install the 'postgresql' package (or set PG_BIN)"
  say "installing PostgreSQL with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends postgresql
  BIN=$(find_bin) && [[ -x $BIN/pg_ctl ]] || die "postgresql installed but pg_ctl not found"
}

ensure_os_user() {
  is_root || return 0
  id -u postgres >/dev/null 2>&1 && return 0
  say "creating the 'postgres' OS user"
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
}

# Pick the cluster directory. As root, the repo must be reachable by the postgres user;
# if it is not (e.g. a 0700 home above it), fall back to /tmp.
resolve_data_dir() {
  if [[ -n ${PG_DATA_DIR:-} ]]; then DATA=$PG_DATA_DIR; return 0; fi
  DATA=$REPO/var/postgres
  [[ -f $DATA/PG_VERSION ]] && return 0
  if is_root && ! { id -u postgres >/dev/null 2>&1 && reachable "$REPO"; }; then
    DATA=/tmp/ledgerstream-pg-$PORT
  fi
}

# Can the postgres user enter $1 and, if present, $1/var?
reachable() {
  as_owner test -x "$1" 2>/dev/null || return 1
  [[ ! -d $1/var ]] || as_owner test -x "$1/var" 2>/dev/null
}

# Unix socket in the data dir unless the path would exceed the ~107-byte socket limit.
socket_dir() {
  if ((${#DATA} < 80)); then echo "$DATA"; else echo /tmp; fi
}

init_cluster() {
  [[ -f $DATA/PG_VERSION ]] && return 0
  say "initdb in $DATA"
  mkdir -p "$DATA"
  if is_root; then chown postgres: "$DATA"; fi
  chmod 0700 "$DATA"
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  as_owner tee "$DATA/pg_hba.conf" >/dev/null <<'EOF'
# Written by deploy/local/postgres.sh: trust, loopback only.
local all all               trust
host  all all 127.0.0.1/32  trust
EOF
  as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<'EOF'

# ---- deploy/local/postgres.sh (test cluster: speed over durability)
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
}

is_running() { [[ -f $DATA/PG_VERSION ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

# Port of the running server (4th line of postmaster.pid).
running_port() { sed -n 4p "$DATA/postmaster.pid" 2>/dev/null; }

psql_su() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"; }

ensure_role_and_db() {
  if [[ -z $(psql_su -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$DB'") ]]; then
    psql_su -c "CREATE ROLE $DB LOGIN CREATEDB"
  fi
  if [[ -z $(psql_su -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'") ]]; then
    psql_su -c "CREATE DATABASE $DB OWNER $DB"
  fi
}

cmd_up() {
  ensure_installed
  ensure_os_user
  resolve_data_dir
  init_cluster
  if is_running; then
    [[ $(running_port) == "$PORT" ]] \
      || die "cluster in $DATA already runs on port $(running_port), not $PORT"
    say "already running on 127.0.0.1:$PORT ($DATA)"
  else
    local t0=$SECONDS
    if ! as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
         -o "-p $PORT -k $(socket_dir)" start >/dev/null; then
      echo "---- tail of $DATA/server.log" >&2
      tail -n 20 "$DATA/server.log" >&2 || true
      die "PostgreSQL did not start on 127.0.0.1:$PORT"
    fi
    say "started on 127.0.0.1:$PORT in $((SECONDS - t0))s ($DATA)"
  fi
  "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 30 || die "pg_isready failed on port $PORT"
  ensure_role_and_db
  say "url: $URL"
}

cmd_down() {
  BIN=$(find_bin) || { say "not installed"; return 0; }
  resolve_data_dir
  if ! is_running; then say "not running ($DATA)"; return 0; fi
  as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
  say "stopped ($DATA)"
}

cmd_status() {
  BIN=$(find_bin) || { say "not installed"; return 3; }
  resolve_data_dir
  if is_running; then
    say "running on 127.0.0.1:$(running_port) ($DATA)"
  else
    say "not running ($DATA)"
    return 3
  fi
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 up|down|status|url" >&2; exit 2 ;;
esac

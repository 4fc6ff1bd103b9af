#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and the benchmarks.
#
#   scripts/postgres.sh start DIR   installs Debian's postgresql when its server binaries are
#                                   missing, initdbs a cluster in DIR (owned by a non-root
#                                   user: PostgreSQL refuses to run as root), starts it on
#                                   127.0.0.1 at a free port with SCRAM password authentication
#                                   and prints its URL (a superuser `orch` with a generated
#                                   password; the database `postgres`).
#   scripts/postgres.sh stop DIR    stops it and removes DIR.
#   scripts/postgres.sh halt DIR    stops the server, keeping its data (for fault tests).
#   scripts/postgres.sh resume DIR  starts a halted server again on the same port.
#
# The server keeps PostgreSQL's defaults for durability (fsync, synchronous_commit on).
set -euo pipefail

command=${1:?usage: postgres.sh start|stop DIR}
dir=${2:?usage: postgres.sh start|stop DIR}

pg_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$found" ] && [ -x "$found/postgres" ] && echo "$found"
}

# Runs a command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Starts the cluster in DIR on 127.0.0.1:PORT.
# Its output goes to files only: the server must not hold on to our caller's pipes.
start_server() {
  as_owner "$(pg_bin)/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $2 -k '$1' -c max_connections=300 -c shared_buffers=256MB" start \
    </dev/null >"$1/pg_ctl.log" 2>&1 \
    || { cat "$1/pg_ctl.log" "$1/server.log" >&2; exit 1; }
}

case "$command" in
start)
  bin=$(pg_bin || true)
  if [ -z "$bin" ]; then
    echo "postgres.sh: installing postgresql" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >&2
    # Debian's package starts its own cluster on 5432; ours runs beside it, so stop that one.
    ($SUDO service postgresql stop >/dev/null 2>&1 || true)
    bin=$(pg_bin)
  fi
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$dir"
    # The owner must reach DIR: open up the folders above it that root made private (mktemp -d).
    up=$(dirname "$(realpath "$dir")")
    while [ "$up" != / ]; do chmod o+x "$up"; up=$(dirname "$up"); done
  fi
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 24)
  as_owner bash -c "umask 077; printf '%s\n' '$password' > '$dir/pwfile'"
  as_owner "$bin/initdb" -D "$dir/data" -U orch --pwfile="$dir/pwfile" --auth=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  # A free loopback port: ask the kernel for one.
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  start_server "$dir" "$port"
  echo "$port" >"$dir/port"
  echo "postgres://orch:$password@127.0.0.1:$port/postgres"
  ;;
halt)
  as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop </dev/null >/dev/null 2>&1
  ;;
resume)
  start_server "$dir" "$(cat "$dir/port")"
  ;;
stop)
  [ -d "$dir" ] || exit 0
  bin=$(pg_bin || true)
  if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: postgres.sh start|stop|halt|resume DIR" >&2
  exit 64
  ;;
esac

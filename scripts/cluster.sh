#!/usr/bin/env bash
# Try several nodes on one machine: a throwaway PostgreSQL server and N `orch serve` nodes on it.
#
#   scripts/cluster.sh [N]    (default 3) builds orch (debug; ORCH_BUILD=release for a release
#                             build), starts PostgreSQL (scripts/postgres.sh) in a temporary
#                             folder, then nodes node-1 … node-N on ports 8101 … 810N (ORCH_PORT_BASE
#                             moves them) on one database, and prints their URLs and the admin
#                             password. Ctrl-C stops the nodes and PostgreSQL and removes the folder.
#
# Put any HTTP load balancer in front of the ports (or spread clients over them by hand);
# `orch bench cluster --url http://127.0.0.1:8101,http://127.0.0.1:8102,…` measures them.
set -euo pipefail

nodes=${1:-3}
base=${ORCH_PORT_BASE:-8100}
build=${ORCH_BUILD:-debug}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/orch-cluster.XXXXXX)
chmod 755 "$work"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$here/scripts/postgres.sh" stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

(cd "$here" && swift build -c "$build" --product orch >&2)
orch="$here/.build/$build/orch"
url=$("$here/scripts/postgres.sh" start "$work/pg")
password=${ORCH_ADMIN_PASSWORD:-cluster-admin-$RANDOM$RANDOM}

for number in $(seq 1 "$nodes"); do
  port=$((base + number))
  ORCH_DATABASE_URL="$url" ORCH_NODE_ID="node-$number" ORCH_PORT="$port" ORCH_ADMIN_PASSWORD="$password" \
    "$orch" serve >"$work/node-$number.log" 2>&1 &
  pids+=($!)
  # The first node creates the schema and the admin; the others start once it listens.
  for _ in $(seq 1 100); do
    grep -q "listening on" "$work/node-$number.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "listening on" "$work/node-$number.log" || { cat "$work/node-$number.log" >&2; exit 1; }
  echo "node-$number: http://127.0.0.1:$port (log: $work/node-$number.log)"
done
echo "database: $url"
echo "admin password: $password"
echo "Ctrl-C stops everything."
wait

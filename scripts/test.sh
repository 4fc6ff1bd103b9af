#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, builds, tests.
# Usage: scripts/test.sh [extra `swift test` arguments, e.g. --filter HealthTests]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
dpkg -s libsqlite3-dev >/dev/null 2>&1 || need_apt+=(libsqlite3-dev)
# promtool (Prometheus's linter) checks /metrics; Debian ships it in the prometheus package.
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
# Node runs the reference's JavaScript client (it needs fetch: Node 18 or later).
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
# Headless Chromium and its driver run the browser tests (Selenium drives them).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# openssl makes the certificates of the HTTPS tests.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# gdb prints the threads of a test run that hangs (see `watched` below).
command -v gdb >/dev/null 2>&1 || need_apt+=(gdb)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# Python and Flask run the reference's own webhook handler in the tests.
command -v python3 >/dev/null 2>&1 || need_python=1
if [ -n "${need_python:-}" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-pip
fi
python3 -c 'import flask' 2>/dev/null || python3 -m pip install --quiet flask
# prometheus_client parses /metrics in the tests; the contract check (scripts/contract.sh) runs
# openapi-spec-validator and schemathesis; httpx is what the reference's Python client uses.
python3 -c 'import prometheus_client' 2>/dev/null || python3 -m pip install --quiet prometheus_client
python3 -c 'import openapi_spec_validator, schemathesis, httpx' 2>/dev/null \
  || python3 -m pip install --quiet openapi-spec-validator schemathesis httpx
python3 -c 'import selenium' 2>/dev/null || python3 -m pip install --quiet selenium

# A throwaway PostgreSQL server for the PostgreSQL half of the suites (installed when missing),
# stopped again however the tests end.
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/orch-test-pg.XXXXXX")
trap 'scripts/postgres.sh stop "$pg_dir/cluster"; rm -rf "$pg_dir"' EXIT
ORCH_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$pg_dir/cluster")
export ORCH_TEST_POSTGRES_URL
echo "test.sh: PostgreSQL $(cat "$pg_dir/cluster/port") on 127.0.0.1 for the tests"

# Runs "$@" with a time limit of $1 seconds, its output also kept in the file $2. A run past the
# limit is a hang (the suite takes 3-4 minutes): it prints the tests that had started and not
# ended and every thread's backtrace in the test process, kills it and fails, instead of
# running on until CI's own limit and saying nothing.
watched() {
  local limit=$1 log=$2; shift 2
  "$@" > >(tee "$log") 2>&1 &
  local pid=$! waited=0
  while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt "$limit" ]; do sleep 1; waited=$((waited + 1)); done
  if kill -0 "$pid" 2>/dev/null; then
    local hung_tests
    hung_tests=$(comm -23 <(sed -nE 's/^◇ Test ([^ ]+) started.*/\1/p' "$log" | sort -u) \
      <(sed -nE 's/^(✔|✘) Test ([^ ]+) (passed|failed) .*/\2/p' "$log" | sort -u) || true)
    for hung in $(pgrep -f 'PackageTests' || true); do
      echo "test.sh: threads of process $hung:"
      timeout 120 gdb -p "$hung" -batch -ex 'thread apply all bt' 2>&1 | grep -E '^(Thread|#)' | head -4000 || true
    done
    echo "test.sh: still running after ${limit}s; these tests had started and not ended:"
    echo "$hung_tests"
    pkill -9 -f 'PackageTests' || true
    pkill -9 -f "$(swift build --show-bin-path)/orch" || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 124
  fi
  wait "$pid"
}

start=$(date +%s)
swift build --build-tests
echo "test.sh: build took $(( $(date +%s) - start ))s"
start=$(date +%s)
watched "${ORCH_TEST_TIME_LIMIT:-1200}" "$pg_dir/test.log" swift test --skip-build "$@"
echo "test.sh: tests took $(( $(date +%s) - start ))s"
# The whole suite (no filter given): the API contract against a live server as well.
if [ $# -eq 0 ]; then
  # On SQLite with ASCII and with Unicode strings, on PostgreSQL with Unicode strings.
  start=$(date +%s)
  watched 900 "$pg_dir/contract.log" scripts/contract.sh "$(swift build --show-bin-path)/orch"
  contract_db="orch_contract_$$"
  psql "$ORCH_TEST_POSTGRES_URL" -qc "CREATE DATABASE $contract_db"
  watched 900 "$pg_dir/contract-pg.log" env CONTRACT_DATABASE_URL="${ORCH_TEST_POSTGRES_URL%/*}/$contract_db" ST_CODECS=utf-8 \
    scripts/contract.sh "$(swift build --show-bin-path)/orch"
  echo "test.sh: contract check took $(( $(date +%s) - start ))s"
fi

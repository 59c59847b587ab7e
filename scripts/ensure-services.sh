#!/usr/bin/env bash
# Makes sure the servers the test suite talks to are up, starting any that stopped.
# In CI (CI=true) a server that cannot be started is a failure, never a silent skip.
set -euo pipefail

wait_for() {  # name, check command
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then echo "services: $name is up"; return 0; fi
    sleep 0.5
  done
  echo "services: $name did not come up" >&2
  return 1
}

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "services: starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  fi
fi
wait_for PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432

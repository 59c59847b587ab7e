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

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping

if ! port_open 5672; then
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached || true
fi
# RabbitMQ takes a while to boot; give it up to a minute.
for _ in $(seq 1 4); do port_open 5672 && break; sleep 15; done
wait_for RabbitMQ port_open 5672

if ! port_open 1883; then
  echo "services: starting Mosquitto"
  mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
fi
wait_for Mosquitto port_open 1883

# Chromium and its driver, from Debian's packages, for the console's browser tests
# (tests/browser: Playwright launches the system executable; nothing is downloaded from a CDN).
if ! command -v chromium >/dev/null; then
  echo "services: installing chromium"
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq chromium chromium-driver \
      || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }; } >/dev/null || true
  fi
fi
if command -v chromium >/dev/null; then
  echo "services: chromium is installed"
elif [ "${CI:-}" = "true" ]; then
  echo "services: chromium could not be installed" >&2; exit 1
else
  echo "services: chromium missing (apt-get install chromium chromium-driver): browser tests will skip" >&2
fi

# nginx fronts the API processes of `make cluster` and the scale-out test; each run starts its
# own nginx with its own config and ports, so the system service stays stopped.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "services: installing nginx"
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d 101: the package must not start the system nginx on port 80.
    policy=/usr/sbin/policy-rc.d; made_policy=""
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; made_policy=1; fi
    { apt-get install -y -qq nginx-light || { apt-get update -qq && apt-get install -y -qq nginx-light; } \
      || apt-get install -y -qq nginx; } >/dev/null || true
    if [ -n "$made_policy" ]; then rm -f "$policy"; fi
  fi
fi
if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
  echo "services: nginx is installed"
elif [ "${CI:-}" = "true" ]; then
  echo "services: nginx could not be installed" >&2; exit 1
else
  echo "services: nginx missing (apt-get install nginx-light): the scale-out and nginx tests will skip" >&2
fi

#!/usr/bin/env bash
# Start the local services the integration tests use when they are installed but down.
# Tests that need a service skip with a message where it is absent; the default (SQLite)
# path needs none of them.
set -uo pipefail
if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start 2>/dev/null || true
  fi
fi
if command -v mosquitto >/dev/null; then
  if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
    mosquitto -d -c /etc/mosquitto/mosquitto.conf 2>/dev/null || mosquitto -d 2>/dev/null || true
  fi
fi
exit 0

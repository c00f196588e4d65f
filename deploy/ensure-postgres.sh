#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use (TEST_POSTGRES_URL, default the local one) answers,
# starting the local cluster if it is installed but stopped.
set -euo pipefail
url="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$host" ] && port=5432
answers() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

if ! answers; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "ensure-postgres: starting the local PostgreSQL cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  elif docker info >/dev/null 2>&1; then
    docker run -d --rm --name orderflow-postgres -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test -p "$port:5432" postgres:16 >/dev/null
  fi
  for _ in $(seq 1 60); do answers && break; sleep 0.5; done
fi
answers || { echo "ensure-postgres: no PostgreSQL at $host:$port (set TEST_POSTGRES_URL)" >&2; exit 1; }
echo "ensure-postgres: PostgreSQL at $host:$port"

#!/usr/bin/env bash
# Makes sure a RabbitMQ broker with the management API answers, starting one if needed:
# the one at AMQP_URL if it answers; else a container where a Docker engine runs; else a
# local rabbitmq-server from the OS package (installed with apt-get when missing and root).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

amqp_url="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
hostport="${amqp_url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$host" ] && port=5672
mgmt_url="${RABBITMQ_MANAGEMENT_URL:-http://${host}:15672}"

answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
mgmt_answers() { curl -fsS -u guest:guest "$mgmt_url/api/overview" >/dev/null 2>&1; }

wait_for() { # what, seconds, command...
  local what="$1" seconds="$2"; shift 2
  for _ in $(seq 1 $((seconds * 2))); do "$@" && return 0; sleep 0.5; done
  echo "ensure-broker: $what did not come up within ${seconds}s" >&2; return 1
}

if ! answers "$host" "$port"; then
  if docker info >/dev/null 2>&1; then
    # A development broker with guest (compose.yaml's has per-worker users and no guest).
    echo "ensure-broker: starting RabbitMQ in Docker (container orderflow-dev-rabbitmq)"
    docker start orderflow-dev-rabbitmq >/dev/null 2>&1 ||
      docker run -d --name orderflow-dev-rabbitmq --hostname rabbitmq \
        -p 127.0.0.1:5672:5672 -p 127.0.0.1:15672:15672 -p 127.0.0.1:15692:15692 \
        -v "$here/rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/20-orderflow.conf:ro" \
        -v "$here/rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro" \
        rabbitmq:3.13-management >/dev/null
  else
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "ensure-broker: installing rabbitmq-server from the OS packages"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
      else
        echo "ensure-broker: no broker at $host:$port, no Docker engine and no rabbitmq-server; install RabbitMQ or set AMQP_URL" >&2
        exit 1
      fi
    fi
    echo "ensure-broker: starting the local rabbitmq-server"
    rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  wait_for "RabbitMQ on $host:$port" 90 answers "$host" "$port"
fi

if ! mgmt_answers; then
  if command -v rabbitmq-plugins >/dev/null 2>&1; then
    rabbitmq-plugins enable rabbitmq_management >/dev/null
  fi
  wait_for "the management API at $mgmt_url" 60 mgmt_answers
fi
echo "ensure-broker: RabbitMQ at $host:$port, management UI at $mgmt_url"

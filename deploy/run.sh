#!/usr/bin/env bash
# Runs orderflow on this machine: makes sure a RabbitMQ broker (with its management UI) is
# there, builds and starts the three workers and the gateway (with a demo API key it prints),
# prints where to look, and stops them on Ctrl-C.
# `--release` builds and runs optimised binaries (for benchmarks). `--demo` runs in its own vhost
# (orderflow-demo) with retries after 0.5 s, 1 s and 2 s, so a failing message reaches its DLQ
# in seconds instead of the default schedule's 13 minutes.
set -euo pipefail
profile=debug
demo=0
for arg in "$@"; do
  case "$arg" in
    --release) profile=release ;;
    --demo) demo=1 ;;
    *) echo "usage: deploy/run.sh [--release] [--demo]" >&2; exit 2 ;;
  esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if [ "$demo" = 1 ]; then
  # Retry tiers are declared with their delays: a vhost of its own keeps the short ones apart
  # from queues that exist with the defaults. Every worker reads the same settings.
  demo_vhost=orderflow-demo
  export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/$demo_vhost}"
  export RETRY_MAX="${RETRY_MAX:-3}" RETRY_INITIAL_MS="${RETRY_INITIAL_MS:-500}"
  export RETRY_MULTIPLIER="${RETRY_MULTIPLIER:-2}" RETRY_MAX_DELAY_MS="${RETRY_MAX_DELAY_MS:-2000}"
fi
"$root/deploy/ensure-broker.sh"
echo "run: building the workers ($profile)"
if [ "$profile" = release ]; then cargo build --quiet --release --bins; else cargo build --quiet --bins; fi

export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
if [ "$demo" = 1 ] && [ "${AMQP_URL##*/}" = "${demo_vhost:-}" ]; then
  mgmt="${RABBITMQ_MANAGEMENT_URL:-http://127.0.0.1:15672}"
  curl -fsS -u guest:guest -X PUT "$mgmt/api/vhosts/$demo_vhost" >/dev/null
  curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' \
    -d '{"configure":".*","write":".*","read":".*"}' "$mgmt/api/permissions/$demo_vhost/guest" >/dev/null
  echo "run: demo vhost '$demo_vhost', retries after ${RETRY_INITIAL_MS} ms doubling (${RETRY_MAX} tiers)"
fi
export STOCK_FILE="${STOCK_FILE:-$root/deploy/stock.json}"
# The deploy step: the topology declared with this (administrator's) login, as compose and
# Kubernetes do before their least-privilege workers start.
echo "run: $("target/$profile/orderflow" topology apply)"
mkdir -p data/logs
pids=()
stop() {
  [ "${#pids[@]}" -gt 0 ] || return 0
  echo; echo "run: stopping the workers"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}
trap stop EXIT
trap 'exit 130' INT TERM

addrs=("${ORDER_HTTP_ADDR:-127.0.0.1:8080}" "${PAYMENT_HTTP_ADDR:-127.0.0.1:8081}" "${STOCK_HTTP_ADDR:-127.0.0.1:8082}")
start() { # name, address
  HTTP_ADDR="$2" "target/$profile/$1" >"data/logs/$1.log" 2>&1 &
  pids+=($!)
}
start order-worker "${addrs[0]}"
start payment-worker "${addrs[1]}"
start stock-worker "${addrs[2]}"
# The gateway, with one demo key (every scope, any customer) unless API_KEYS is given.
gateway_addr="${GATEWAY_HTTP_ADDR:-127.0.0.1:8000}"
demo_key="${DEMO_API_KEY:-demo-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}"
if [ -z "${API_KEYS:-}" ]; then
  demo_hash="$("target/$profile/gateway" hash-key "$demo_key")"
  export API_KEYS='[{"name":"demo","sha256":"'"$demo_hash"'","scopes":["orders:write","orders:read","stock:read"]}]'
fi
export PAYMENT_HTTP_URL="http://${addrs[1]}" STOCK_HTTP_URL="http://${addrs[2]}"
start gateway "$gateway_addr"
addrs+=("$gateway_addr")

for addr in "${addrs[@]}"; do
  for _ in $(seq 1 120); do
    curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS "http://$addr/readyz" >/dev/null 2>&1 || {
    echo "run: the worker on $addr is not ready; see data/logs/" >&2; exit 1; }
done

cat <<INFO

orderflow is running (logs in data/logs/, stores in data/):
  gateway         http://$gateway_addr/v1/orders    (X-Api-Key: $demo_key)
  OpenAPI         http://$gateway_addr/v1/openapi.json
  order API       http://127.0.0.1:8080/orders      (the workers' own APIs, for operators)
  payments        http://127.0.0.1:8081/payments/{order_id}
  stock           http://127.0.0.1:8082/stock/{sku}
  gRPC            127.0.0.1:9080 api.OrderService, 127.0.0.1:9082 api.StockService (reflection on)
  metrics         http://127.0.0.1:808{0,1,2}/metrics
  RabbitMQ UI     http://127.0.0.1:15672            (guest / guest)

Try:
  curl -s -XPOST $gateway_addr/v1/orders -H 'x-api-key: $demo_key' -H 'content-type: application/json' \\
    -d '{"customer_id":"c-42","items":[{"sku":"SKU-1","quantity":2}],"payment_token":"tok_visa"}'
  curl -s $gateway_addr/v1/orders/<order_id> -H 'x-api-key: $demo_key'   # with its payment and reservation
  export AMQP_URL='$AMQP_URL'   # in another shell, for the examples and the CLI
  cargo run -q -p orderflow-examples --example poison -- --kind outage   # a DLQ in $( [ "$demo" = 1 ] && echo "seconds" || echo "~13 min (try --demo)" )
  target/$profile/orderflow dlq groups                                   # failure groups, then:
  target/$profile/orderflow dlq show payment.order-created --error-type provider-unavailable
  target/$profile/orderflow dlq replay --group <fingerprint>

Ctrl-C stops the workers.
INFO
wait "${pids[@]}"

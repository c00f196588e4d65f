#!/usr/bin/env bash
# The full test suite: makes sure the services are up, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/ensure-broker.sh
deploy/ensure-postgres.sh
deploy/ensure-browser.sh
# The TLS tests make their own CA with openssl.
if ! command -v openssl >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >/dev/null
fi
cargo test --workspace --all-targets "$@"
# The broker library's README example, which is its crate docs (`--all-targets` runs no doctest).
cargo test --doc -p orderflow-broker "$@"

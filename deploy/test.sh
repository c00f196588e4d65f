#!/usr/bin/env bash
# The full test suite: makes sure the services are up, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/ensure-broker.sh
deploy/ensure-postgres.sh
deploy/ensure-browser.sh
cargo test --workspace --all-targets "$@"

#!/usr/bin/env bash
# Runs client.py, a Python client whose stubs grpcio-tools generates here from
# crates/grpc/proto/api.proto, against the order service at $1 (host:port). grpcio-tools comes
# from PyPI into a cached virtualenv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/orderflow-grpc-python"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import grpc_tools' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q grpcio-tools==1.85.1
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$venv/bin/python" -m grpc_tools.protoc -I "$here/../../crates/grpc/proto" \
  --python_out="$out" --grpc_python_out="$out" api.proto
PYTHONPATH="$out" "$venv/bin/python" "$here/client.py" "$1"

#!/usr/bin/env bash
# Validates every deploy YAML file against its schema: compose against the Compose spec, the
# Kubernetes manifests against the Kubernetes 1.37 schemas (strict: unknown fields fail), the
# Prometheus files with promtool. The validators come from PyPI into a cached virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${XDG_CACHE_HOME:-$HOME/.cache}/orderflow-yaml-check"
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/check-jsonschema" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q check-jsonschema==0.39.0 kubernetes-validate==1.37.0
fi
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml
# kustomization.yaml has no schema there (kustomize's own type): it is only parsed.
"$venv/bin/kubernetes-validate" --strict --quiet --no-warn deploy/k8s/*.yaml
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
# The Grafana dashboard's queries parse, and name only documented metrics.
rules="$(mktemp --suffix=.yml)"
trap 'rm -f "$rules"' EXIT
deploy/grafana/check-dashboard.py deploy/grafana/dashboards/orderflow.json > "$rules"
promtool check rules "$rules"

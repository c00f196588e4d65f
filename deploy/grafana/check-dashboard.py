#!/usr/bin/env python3
"""Checks a Grafana dashboard's queries: prints them as a Prometheus rule file (JSON is YAML) for
`promtool check rules` to parse, and fails when one names an orderflow metric that
docs/observability.md does not list.

    deploy/grafana/check-dashboard.py deploy/grafana/dashboards/orderflow.json > rules.yml
"""

import json
import pathlib
import re
import sys

dashboard = json.load(open(sys.argv[1]))
documented = pathlib.Path(__file__).parents[2].joinpath("docs/observability.md").read_text()
rules, unknown = [], set()
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        expr = target["expr"].replace("$__rate_interval", "5m")
        rules.append({"record": f"dashboard:panel_{panel['id']}_{target['refId']}", "expr": expr})
        for metric in re.findall(r"\borderflow_\w+", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", metric)
            if f"`{base}" not in documented:
                unknown.add(base)
if unknown:
    sys.exit(f"{sys.argv[1]}: undocumented metrics {sorted(unknown)}")
print(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}, indent=1))

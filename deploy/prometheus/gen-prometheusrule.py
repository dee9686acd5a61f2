#!/usr/bin/env python3
"""Write k8s/base/prometheusrule.yaml from deploy/prometheus/rules/p1-alerts.yml.

The alert rules have one source (the Prometheus rules file, unit-tested with `promtool test rules`);
the PrometheusRule for the Prometheus Operator wraps the same groups. tests/deploy checks they agree.

    python deploy/prometheus/gen-prometheusrule.py          # write
    python deploy/prometheus/gen-prometheusrule.py --check  # exit 1 when stale
"""

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/rules/p1-alerts.yml"
TARGET = ROOT / "k8s/base/prometheusrule.yaml"

HEADER = (
    "# Generated from deploy/prometheus/rules/p1-alerts.yml by deploy/prometheus/gen-prometheusrule.py.\n"
    "# Do not edit by hand. Many installations select rules by a label (e.g. release: ...): add it in\n"
    "# an overlay if yours does.\n"
)


def render() -> str:
    rules = yaml.safe_load(RULES.read_text())
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "p1-telemetry"},
        "spec": {"groups": rules["groups"]},
    }
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=1000, allow_unicode=True)


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run {Path(__file__).relative_to(ROOT)}")
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The committed Grafana dashboard and scrape configs name only metrics the processes export."""

from __future__ import annotations

import json
import re

from config.settings import PROJECT_ROOT

MONITORING = PROJECT_ROOT / "infra" / "monitoring"
_SUFFIX = re.compile(r"_(total|bucket|sum|count|created)$")


def _defined() -> set[str]:
    # The metric names as declared in the two metrics modules (quoted "spotrec_..." strings).
    text = "".join((PROJECT_ROOT / m).read_text() for m in ("api/metrics.py", "streams/metrics.py"))
    return set(re.findall(r'"(spotrec_[a-z0-9_]+)"', text))


def test_every_dashboard_query_names_an_exported_metric() -> None:
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "spotrec.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {_SUFFIX.sub("", n) for e in exprs for n in re.findall(r"spotrec_[a-z0-9_]+", e)}
    assert used, "the dashboard queries nothing"
    assert used <= _defined(), used - _defined()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_scrape_configs_name_both_processes() -> None:
    for name in ("prometheus.yml", "prometheus-local.yml"):
        text = (MONITORING / name).read_text()
        jobs = set(re.findall(r"job_name: (\S+)", text))
        assert jobs == {"spotrec-api", "spotrec-worker"}, name

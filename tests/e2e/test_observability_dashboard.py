"""The shipped Grafana dashboard queries only metrics (and labels) that Storekeeper exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from storekeeper.observability import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/storekeeper-dashboard.json"
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
# Labels Prometheus adds to every series, and the histogram bucket bound.
_ALWAYS = {"job", "instance", "le"}


def exported() -> dict[str, set[str]]:
    """Every sample name metrics.py defines, with the labels its series carry."""
    names: dict[str, set[str]] = {}
    for item in vars(metrics).values():
        if isinstance(item, MetricWrapperBase):
            for suffix in _SUFFIXES[item._type]:
                names[item._name + suffix] = set(item._labelnames)
        elif isinstance(item, metrics.DatabaseGauge):
            names[item.name] = set(item.labels)
    return names


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of every panel, rows included."""
    found = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            found += [target["expr"] for target in inner.get("targets", [])]
    return found


def test_every_query_uses_only_exported_metrics_and_their_labels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = exported()
    expressions = queries(dashboard)
    assert expressions
    for expr in expressions:
        used = set(re.findall(r"\b(storekeeper_[a-z0-9_]+)", expr))
        assert used, f"no Storekeeper metric in {expr!r}"
        assert used <= known.keys(), f"unknown metric(s) {used - known.keys()} in {expr!r}"
        labels = set().union(*(known[name] for name in used)) | _ALWAYS
        for grouping in re.findall(r"\bby \(([^)]*)\)", expr):
            grouped = {label.strip() for label in grouping.split(",")}
            assert grouped <= labels, f"unknown label(s) {grouped - labels} in {expr!r}"
        for label in re.findall(r"[{,]\s*([a-z_]+)\s*=~?", expr):
            assert label in labels, f"unknown label {label} in {expr!r}"


def test_the_dashboard_covers_what_operators_watch() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    text = " ".join(queries(dashboard))
    for name in (
        "storekeeper_http_requests_total",
        "storekeeper_http_request_duration_seconds_bucket",
        "storekeeper_orders_total",
        "storekeeper_orders_by_status",
        "storekeeper_outbox_lag_events",
        "storekeeper_jobs_queued",
        "storekeeper_payment_breaker_open",
        "storekeeper_telemetry_readings_total",
        "storekeeper_alerts_total",
        "storekeeper_live_clients",
    ):
        assert name in text, f"no panel shows {name}"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24
    assert dashboard["uid"] and dashboard["title"]


def test_the_docs_list_every_metric() -> None:
    docs = (DASHBOARD.parents[2] / "docs/observability.md").read_text()
    for name in exported():
        if not name.endswith(("_created", "_bucket", "_count", "_sum")):
            assert f"`{name}`" in docs, f"docs/observability.md does not list {name}"

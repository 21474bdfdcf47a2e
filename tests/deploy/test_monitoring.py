"""The dashboards and alert rules in deploy/monitoring: valid, tested with promtool, and
using only metrics that a running worker (and the reaper) really serve."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.cleanup.support import reaper_config
from tests.conftest import need
from tests.deploy.support import DEPLOY, blocks, resources
from tests.fakes.compute_api import ComputeFake
from tests.remote.harness import control_settings, running_with_services
from tests.support.worker import free_port, worker_settings
from travis_worker.cleanup import run_cleanup

MONITORING = DEPLOY / "monitoring"
GRAFANA = MONITORING / "grafana-dashboard.json"
CLOUD = MONITORING / "cloud-monitoring-dashboard.json"
ALERTS = MONITORING / "alerts.yml"
# Metric names as PromQL writes them; `up` is made by Prometheus, not by the worker.
_METRIC = re.compile(r"\b((?:travis_worker|process|python)_[a-z0-9_]+)\b")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def grafana_expressions() -> Iterator[str]:
    dashboard = json.loads(GRAFANA.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["definition"]


def cloud_expressions() -> Iterator[str]:
    for tile in json.loads(CLOUD.read_text())["mosaicLayout"]["tiles"]:
        for data_set in tile["widget"]["xyChart"]["dataSets"]:
            yield data_set["timeSeriesQuery"]["prometheusQuery"]


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def used_metrics() -> set[str]:
    expressions = [*grafana_expressions(), *cloud_expressions()]
    expressions += [rule["expr"] for rule in alert_rules()]
    return {name for expression in expressions for name in _METRIC.findall(expression)}


def exposed_names(text: str) -> set[str]:
    """Every series name the scraped text can hold, samples or not yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(f"{family.name}{suffix}" for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


async def get_text(url: str, auth: aiohttp.BasicAuth | None = None) -> str:
    async with aiohttp.ClientSession() as http, http.get(url, auth=auth) as response:
        assert response.status == 200
        return await response.text()


async def reaper_metrics(fake: ComputeFake) -> str:
    """`/metrics` of a running reaper (its own listener)."""
    port = free_port()
    config = reaper_config(fake, once=False, listen_addr=f"127.0.0.1:{port}")
    reaper = asyncio.create_task(run_cleanup(config))
    try:
        for _ in range(200):
            try:
                return await get_text(f"http://127.0.0.1:{port}/metrics")
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        raise AssertionError("the reaper never served /metrics")
    finally:
        reaper.cancel()
        await asyncio.gather(reaper, return_exceptions=True)


def test_the_dashboards_parse_and_every_panel_queries_prometheus() -> None:
    dashboard = json.loads(GRAFANA.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
    titles = " / ".join(p["title"] for p in panels).lower()
    for topic in ("finished", "running jobs", "insert", "first log byte", "errors by code and zone",
                  "requeues", "log parts", "reconnects", "orphan"):  # fmt: skip
        assert topic in titles
    tiles = json.loads(CLOUD.read_text())["mosaicLayout"]["tiles"]
    assert tiles and all(t["xPos"] + t["width"] <= 48 for t in tiles)


async def test_every_metric_used_is_served_by_a_worker_or_the_reaper(
    amqp_vhost_uri, build_api, queue_name, compute_only
) -> None:
    values = control_settings(worker_settings(amqp_vhost_uri, queue_name, build_api.url))
    async with running_with_services(values) as worker:
        status, body, _ = await worker.client.request("GET", "/metrics")
        assert status == 200
    served = exposed_names(body.decode()) | exposed_names(await reaper_metrics(compute_only))
    used = used_metrics()
    assert {"travis_worker_job_queue_ready_messages", "travis_worker_cleanup_orphans"} <= used
    assert used - served == set(), "used by a panel or rule, but served by nobody"


def test_the_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    need(promtool is not None, "promtool (apt-get install prometheus)")
    assert promtool is not None
    for command in (["check", "rules", ALERTS.name], ["test", "rules", "alerts.test.yml"]):
        result = subprocess.run(
            [promtool, *command], cwd=MONITORING, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_explained_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"page", "warning"}
        assert f"`{rule['alert']}`" in readme, f"{rule['alert']}: what to do is not written"


def test_the_cloud_monitoring_dashboard_is_optional_and_reads_the_shipped_json() -> None:
    dashboard = resources("google_monitoring_dashboard")["worker"]
    assert dashboard["count"] == "${var.monitoring_dashboard ? 1 : 0}"
    assert "monitoring/cloud-monitoring-dashboard.json" in dashboard["dashboard_json"]
    assert blocks("variable")["monitoring_dashboard"]["default"] is False

"""Grafana dashboards: generated files are current, valid, provisioned, and query real metrics.

Grafana itself is not run here (no Docker); the JSON is checked for what Grafana needs to load
it, every PromQL expression is parsed by promtool, and every metric it names is exported.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from em_service import dashboards
from tests.ops.prom import (
    EXTERNAL_METRICS,
    ROOT,
    binary,
    exported_metrics,
    metric_names,
    recorded_metrics,
)

PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
FILES = sorted(dashboards.DIR.glob("*.json"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _exprs() -> list[str]:
    return [t["expr"] for path in FILES for p in _load(path)["panels"] for t in p["targets"]]


def test_dashboard_files_are_generated_and_current() -> None:
    assert dashboards.render() == {p.name: p.read_text() for p in FILES}
    assert dashboards.main([]) == 0


def test_the_issue_s_dashboards_exist() -> None:
    titles = {_load(p)["title"] for p in FILES}
    for word in ("pipeline health", "alerts by type and tier", "lag", "dead letters", "API"):
        assert any(word in t for t in titles), word


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dashboard_is_loadable(path: Path) -> None:
    board = _load(path)
    assert board["uid"] and len(board["uid"]) <= 40 and board["title"]
    assert "id" not in board, "provisioned dashboards must not carry a database id"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, f"panel {panel['title']!r} overlaps another"
        cells |= mine
        assert panel["targets"] and panel["type"] in {"timeseries", "stat", "table"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] == dashboards.DATASOURCE


def test_dashboards_use_the_provisioned_datasource_and_folder() -> None:
    datasource = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (ds,) = datasource["datasources"]
    assert (ds["type"], ds["uid"]) == (dashboards.DATASOURCE["type"], dashboards.DATASOURCE["uid"])
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "em.yml").read_text())
    (prov,) = provider["providers"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{prov['options']['path']}:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_uids_are_unique() -> None:
    uids = [_load(p)["uid"] for p in FILES]
    assert len(uids) == len(set(uids)) == len(dashboards.DASHBOARDS)


def test_every_query_uses_metrics_the_service_exports() -> None:
    known = exported_metrics() | recorded_metrics() | EXTERNAL_METRICS
    used = set().union(*(metric_names(e) for e in _exprs()))
    assert used and used - known == set()


def _check_promql(exprs: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    rules = {
        "groups": [
            {"name": "q", "rules": [{"record": f"q:{i}", "expr": e} for i, e in enumerate(exprs)]}
        ]
    }
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    return subprocess.run(
        [binary("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    proc = _check_promql(_exprs(), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_promql_check_catches_a_broken_query(tmp_path: Path) -> None:
    proc = _check_promql(["sum by (type (rate(em_readings_consumed_total[5m]))"], tmp_path)
    assert proc.returncode != 0

"""The alerting rules: promtool checks them and runs their unit tests; each is documented.

Every alert must fire on some synthetic series and stay quiet on others (promtool unit tests in
deploy/prometheus/tests/), carry a summary, a description and a runbook anchor that exists.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ops.prom import (
    DEPLOY_CONFIG,
    EXTERNAL_METRICS,
    ROOT,
    RULE_TESTS_DIR,
    RULES_DIR,
    binary,
    exported_metrics,
    local_config,
    metric_names,
    recorded_metrics,
)

RUNBOOK = ROOT / "docs" / "runbook.md"


def _rules() -> list[dict]:
    return [
        rule
        for path in sorted(RULES_DIR.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def _alerts() -> list[dict]:
    return [r for r in _rules() if "alert" in r]


def _promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, check=False, cwd=cwd
    )


def test_promtool_check_rules() -> None:
    proc = _promtool("check", "rules", *map(str, sorted(RULES_DIR.glob("*.yml"))))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in proc.stdout


def test_promtool_unit_tests_pass() -> None:
    proc = _promtool("test", "rules", *map(str, sorted(RULE_TESTS_DIR.glob("*.yml"))))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """A rule that can no longer fire fails its unit test (the tests can fail)."""
    rules, tests = tmp_path / "rules", tmp_path / "tests"
    shutil.copytree(RULES_DIR, rules)
    shutil.copytree(RULE_TESTS_DIR, tests)
    em = rules / "em.yml"
    text = em.read_text()
    assert 'up{job="em-worker"} == 0' in text
    em.write_text(text.replace('up{job="em-worker"} == 0', 'up{job="em-worker"} == 2'))
    proc = _promtool("test", "rules", *map(str, sorted(tests.glob("*.yml"))))
    assert proc.returncode != 0
    assert "WorkerDown" in proc.stdout + proc.stderr


def _tested() -> tuple[set[str], set[str]]:
    """Return (alerts some test expects firing, alerts some test expects quiet)."""
    fires, quiet = set(), set()
    for path in RULE_TESTS_DIR.glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    return fires, quiet


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    names = {a["alert"] for a in _alerts()}
    fires, quiet = _tested()
    assert names - fires == set(), "alerts no unit test sees firing"
    assert names - quiet == set(), "alerts no unit test sees quiet"
    assert (fires | quiet) - names == set(), "unit tests of alerts that do not exist"


def _anchors(markdown: str) -> set[str]:
    """GitHub-style anchors of the markdown headings."""
    out = set()
    for heading in re.findall(r"^#+\s+(.+)$", markdown, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_alert_is_documented(alert: dict) -> None:
    annotations = alert.get("annotations", {})
    assert annotations.get("summary") and annotations.get("description")
    assert alert["labels"]["severity"] in {"page", "ticket"}
    url = annotations.get("runbook_url", "")
    assert url == f"docs/runbook.md#{alert['alert'].lower()}"
    assert url.split("#")[1] in _anchors(RUNBOOK.read_text()), "no runbook section"


def test_runbook_has_no_section_for_a_missing_alert() -> None:
    names = {a["alert"].lower() for a in _alerts()}
    sections = set(re.findall(r"^### (\w+)$", RUNBOOK.read_text(), flags=re.M))
    assert {s.lower() for s in sections} - names == set()


def test_deploy_prometheus_config_is_valid(tmp_path: Path) -> None:
    """promtool accepts deploy/prometheus.yml with its rules (paths made local)."""
    token = tmp_path / "token"
    token.write_text("x")
    config = yaml.safe_load(DEPLOY_CONFIG.read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    local = local_config(
        {"em-worker": "w:9108", "em-archiver": "a:9110", "em-api": "api:8000"},
        sorted(RULES_DIR.glob("*.yml")),
        token,
    )
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(local))
    proc = _promtool("check", "config", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_use_only_metrics_the_service_exports() -> None:
    known = exported_metrics() | recorded_metrics() | EXTERNAL_METRICS
    used = set().union(*(metric_names(r["expr"]) for r in _rules()))
    assert used - known == set()
    assert {"em_consumer_lag_seconds", "em_worker_up"} <= used & exported_metrics()

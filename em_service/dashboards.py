"""Grafana dashboards (deploy/grafana/dashboards/*.json), generated from this module.

``python3 -m em_service.dashboards --write`` writes them; ``--check`` (the tests) fails when the
files drift from this code. Grafana provisions them from deploy/grafana/provisioning (folder
"EM"); every panel queries the provisioned Prometheus datasource (uid ``prometheus``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DIR = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

Target = tuple[str, str]  # (PromQL, legend)


def _panel(
    title: str,
    targets: list[Target],
    unit: str = "short",
    kind: str = "timeseries",
    width: int = 12,
    description: str = "",
) -> dict:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": e, "legendFormat": leg}
            for i, (e, leg) in enumerate(targets)
        ],
        "_width": width,
    }


def _dashboard(uid: str, title: str, panels: list[dict], description: str) -> dict:
    x = y = row_h = 0
    laid = []
    for i, panel in enumerate(panels, start=1):
        width = panel.pop("_width")
        height = 4 if panel["type"] == "stat" else 8
        if x + width > 24:
            x, y, row_h = 0, y + row_h, 0
        laid.append({"id": i, "gridPos": {"h": height, "w": width, "x": x, "y": y}, **panel})
        x, row_h = x + width, max(row_h, height)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["em"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": laid,
    }


def pipeline() -> dict:
    return _dashboard(
        "em-pipeline",
        "EM: pipeline health",
        [
            _panel("Workers consuming", [("sum(em_worker_up)", "workers")], kind="stat", width=6),
            _panel("Archivers consuming", [("sum(em_archiver_up)", "")], kind="stat", width=6),
            _panel(
                "Oldest unprocessed reading",
                [("max(em_oldest_unprocessed_reading_age_seconds)", "")],
                unit="s",
                kind="stat",
                width=6,
            ),
            _panel(
                "Enrolled tags silent",
                [("em:enrolled_silent:ratio", "")],
                unit="percentunit",
                kind="stat",
                width=6,
            ),
            _panel(
                "Readings per minute by device type",
                [("em:readings_per_minute:by_type", "{{type}}")],
                unit="short",
            ),
            _panel(
                "Enrolled and recently heard devices",
                [
                    ("sum(em_devices_enrolled)", "enrolled (warm partitions)"),
                    ("sum(em_devices_heard_recently)", "heard recently"),
                    ("sum(em_devices_silent)", "silent (rules)"),
                ],
            ),
            _panel(
                "Dead letters and processing errors per minute",
                [
                    ("sum by (reason) (rate(em_readings_rejected_total[5m])) * 60", "{{reason}}"),
                    (
                        "sum by (consumer) (rate(em_records_failed_total[5m])) * 60",
                        "processing error: {{consumer}}",
                    ),
                ],
            ),
            _panel(
                "Transaction commit p99 (all partitions)",
                [
                    (
                        "histogram_quantile(0.99, sum by (le) "
                        "(rate(em_transaction_commit_seconds_bucket[5m])))",
                        "p99",
                    )
                ],
                unit="s",
            ),
            _panel(
                "Firing ops alerts",
                [('sum by (alertname, severity) (ALERTS{alertstate="firing"})', "{{alertname}}")],
                kind="table",
                width=24,
            ),
        ],
        "Is every tag being checked, and are alerts reaching officers?",
    )


def alerts() -> dict:
    return _dashboard(
        "em-alerts",
        "EM: alerts by type and tier",
        [
            _panel(
                "Alerts raised per hour by type",
                [("sum by (type) (increase(em_alerts_emitted_total[1h]))", "{{type}}")],
            ),
            _panel(
                "Alerts raised per hour by tier (severity)",
                [("sum by (severity) (increase(em_alerts_emitted_total[1h]))", "{{severity}}")],
            ),
            _panel(
                "Open breach episodes",
                [("sum by (kind) (em_open_episodes)", "{{kind}}")],
            ),
            _panel(
                "Scene matches per hour by confidence",
                [("sum by (confidence) (increase(em_scene_matches_total[1h]))", "{{confidence}}")],
            ),
            _panel(
                "Ops alerts firing by severity",
                [('count by (severity) (ALERTS{alertstate="firing"})', "{{severity}}")],
                width=24,
            ),
        ],
        "Officer alerts by type and severity tier, and the ops alerts about the service itself.",
    )


def lag() -> dict:
    return _dashboard(
        "em-lag",
        "EM: lag",
        [
            _panel(
                "Lag (seconds) per consumer and partition",
                [
                    (
                        "max by (consumer, topic, partition) (em_consumer_lag_seconds)",
                        "{{consumer}} {{topic}}[{{partition}}]",
                    )
                ],
                unit="s",
                width=24,
            ),
            _panel(
                "Lag (records) per consumer and partition",
                [
                    (
                        "sum by (consumer, topic, partition) (em_consumer_lag_records)",
                        "{{consumer}} {{topic}}[{{partition}}]",
                    )
                ],
            ),
            _panel(
                "Time since the last commit per readings partition",
                [
                    (
                        "time() - max by (partition) (em_partition_last_commit_timestamp_seconds)",
                        "partition {{partition}}",
                    )
                ],
                unit="s",
            ),
            _panel(
                "Event time to processed (p50, p99)",
                [
                    (
                        "histogram_quantile(0.5, sum by (le) "
                        "(rate(em_reading_event_lag_seconds_bucket[5m])))",
                        "p50",
                    ),
                    (
                        "histogram_quantile(0.99, sum by (le) "
                        "(rate(em_reading_event_lag_seconds_bucket[5m])))",
                        "p99",
                    ),
                ],
                unit="s",
            ),
            _panel(
                "Archiver backlog by topic (records)",
                [("sum by (topic) (em_archiver_lag_records)", "{{topic}}")],
            ),
        ],
        "How far behind each consumer is, per partition, and whether partitions commit.",
    )


def dead_letters() -> dict:
    return _dashboard(
        "em-dead-letters",
        "EM: dead letters",
        [
            _panel(
                "Dead letters per minute by reason",
                [("sum by (reason) (rate(em_readings_rejected_total[5m])) * 60", "{{reason}}")],
                width=24,
            ),
            _panel(
                "Processing errors per minute",
                [
                    (
                        "sum by (consumer, reason) (rate(em_records_failed_total[5m])) * 60",
                        "{{consumer}} {{reason}}",
                    )
                ],
            ),
            _panel(
                "Dead letters in the last 24 h by reason",
                [("sum by (reason) (increase(em_readings_rejected_total[24h]))", "{{reason}}")],
                kind="table",
            ),
            _panel(
                "Conditions rejected and readings from unknown devices (per hour)",
                [
                    ("sum(increase(em_conditions_rejected_total[1h]))", "conditions rejected"),
                    ("sum(increase(em_unknown_device_readings_total[1h]))", "unknown device"),
                ],
                width=24,
                description="Re-drive with `em-service dlq replay --reason …` (docs/runbook.md).",
            ),
        ],
        "What the worker refused and why; re-drive with em-service dlq replay.",
    )


def api() -> dict:
    return _dashboard(
        "em-api",
        "EM: API latency and errors",
        [
            _panel(
                "Requests per second by status",
                [("sum by (status) (rate(em_api_requests_total[5m]))", "{{status}}")],
            ),
            _panel(
                "5xx share",
                [
                    (
                        'sum(rate(em_api_requests_total{status=~"5.."}[5m])) '
                        "/ sum(rate(em_api_requests_total[5m]))",
                        "5xx",
                    )
                ],
                unit="percentunit",
            ),
            _panel(
                "Latency p95 by route",
                [
                    (
                        "histogram_quantile(0.95, sum by (route, le) "
                        "(rate(em_api_request_seconds_bucket[5m])))",
                        "{{route}}",
                    )
                ],
                unit="s",
                width=24,
            ),
            _panel(
                "Webhook deliveries, failed attempts and give-ups per minute",
                [
                    (
                        "sum by (target) (rate(em_webhook_deliveries_total[5m])) * 60",
                        "ok {{target}}",
                    ),
                    (
                        "sum by (target) (rate(em_webhook_attempt_failures_total[5m])) * 60",
                        "failed attempt {{target}}",
                    ),
                    (
                        "sum by (target) (rate(em_webhook_failures_total[5m])) * 60",
                        "gave up {{target}}",
                    ),
                ],
            ),
            _panel(
                "SSE hub: seconds since its last outbox read",
                [("time() - em_sse_hub_last_poll_timestamp_seconds", "{{instance}}")],
                unit="s",
            ),
            _panel(
                "Archiver DB write p99",
                [
                    (
                        "histogram_quantile(0.99, sum by (le) (rate(em_db_write_seconds_bucket[5m])))",
                        "p99",
                    )
                ],
                unit="s",
            ),
            _panel(
                "Hours since retention and audit checkpoint",
                [
                    ("(time() - max(em_retention_last_run_timestamp_seconds)) / 3600", "retention"),
                    ("(time() - max(em_audit_checkpoint_timestamp_seconds)) / 3600", "checkpoint"),
                ],
                unit="h",
            ),
        ],
        "API requests, latency and errors; webhooks, SSE and the store behind them.",
    )


DASHBOARDS = {
    "pipeline": pipeline,
    "alerts": alerts,
    "lag": lag,
    "dead-letters": dead_letters,
    "api": api,
}


def render() -> dict[str, str]:
    """Return ``{file name: JSON text}`` of every dashboard."""
    return {
        f"em-{name}.json": json.dumps(build(), indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write (default: check)")
    args = parser.parse_args(argv)
    files = render()
    if args.write:
        DIR.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (DIR / name).write_text(text)
        return 0
    stale = [n for n, t in files.items() if not (DIR / n).exists() or (DIR / n).read_text() != t]
    extra = sorted(p.name for p in DIR.glob("*.json") if p.name not in files)
    for name in stale + extra:
        print(
            f"out of date: deploy/grafana/dashboards/{name} (run python3 -m em_service.dashboards --write)"
        )
    return 1 if stale or extra else 0


if __name__ == "__main__":
    raise SystemExit(main())

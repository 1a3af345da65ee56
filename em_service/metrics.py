"""Prometheus metrics of the streaming worker (names: ``em_`` prefix, ``_total``, ``_seconds``).

All metrics live in one module so that dashboards and alert rules have one place to look.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400)
_FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)

READINGS_CONSUMED = Counter(
    "em_readings_consumed_total", "Valid readings consumed from the readings topic", ["type"]
)
READINGS_REJECTED = Counter(
    "em_readings_rejected_total", "Readings sent to the dead-letter topic", ["reason"]
)
EVENT_LAG = Histogram(
    "em_reading_event_lag_seconds",
    "Event time of a reading to the moment the worker finished processing it",
    buckets=_LAG_BUCKETS,
)
PROCESSING = Histogram(
    "em_reading_processing_seconds",
    "Consume of a reading to the end of its processing (decode, rules, sends)",
    buckets=_FAST_BUCKETS,
)
UNKNOWN_DEVICES = Counter(
    "em_unknown_device_readings_total", "Readings from devices no one is enrolled with"
)
WORKER_UP = Gauge("em_worker_up", "1 while the worker consumes readings")


def serve(port: int, addr: str = "127.0.0.1") -> None:
    """Start the ``/metrics`` HTTP endpoint on ``addr:port`` (a daemon thread)."""
    start_http_server(port, addr=addr)


CONDITIONS_APPLIED = Counter("em_conditions_applied_total", "Conditions events applied")
CONDITIONS_REJECTED = Counter(
    "em_conditions_rejected_total", "Conditions events rejected (invalid; previous version kept)"
)
ALERTS_EMITTED = Counter(
    "em_alerts_emitted_total", "Alerts sent to the alerts topic", ["type", "severity"]
)
VICTIM_FIXES = Counter(
    "em_victim_fixes_total", "Victims' fixes taken into the worker's memory (victim topic)"
)
VICTIM_REJECTED = Counter(
    "em_victim_readings_rejected_total", "Victim readings dead-lettered, by reason", ["reason"]
)
VICTIMS_TRACKED = Gauge("em_victims_tracked", "Victim devices with a recent fix in memory")
VICTIM_READS = Counter(
    "em_victim_position_reads_total",
    "Look-ups of a victim's position by the victim rule (positions never leave the worker)",
)
OPEN_EPISODES = Gauge("em_open_episodes", "Open breach episodes on this worker", ["kind"])
DEVICES_SILENT = Gauge("em_devices_silent", "Devices currently silent on this worker")
RULE_EVALUATION = Histogram(
    "em_rule_evaluation_seconds",
    "Time to evaluate all rules for one reading",
    buckets=_FAST_BUCKETS,
)
TICKS = Counter(
    "em_ticks_total",
    "Timer ticks done (each checks silence, reorder buffers and window ends of every partition "
    "the worker holds)",
)
TRANSACTION_COMMIT = Histogram(
    "em_transaction_commit_seconds",
    "Commit of the pending work of the worker's partitions (one Kafka transaction each)",
    buckets=_FAST_BUCKETS,
)

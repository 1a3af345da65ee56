"""Prometheus metrics of the store and the archiver (names: ``em_`` prefix, units in names)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_ROW_BUCKETS = (1, 5, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 20000)
_WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

DB_WRITE_BATCH_ROWS = Histogram(
    "em_db_write_batch_rows",
    "Rows offered to the database per archiver batch",
    ["kind"],
    buckets=_ROW_BUCKETS,
)
DB_WRITE_SECONDS = Histogram(
    "em_db_write_seconds",
    "Duration of one archiver write transaction, commit included",
    buckets=_WRITE_BUCKETS,
)
ARCHIVER_RECORDS = Counter(
    "em_archiver_records_total", "Kafka records the archiver handled", ["topic", "outcome"]
)
ARCHIVER_LAG = Gauge(
    "em_archiver_lag_records",
    "Records on the topic not yet archived (high water − position)",
    ["topic"],
)
ARCHIVER_ASSIGNED = Gauge(
    "em_archiver_assigned_partitions", "Partitions currently assigned to this archiver"
)
ARCHIVER_WRITE_ERRORS = Counter(
    "em_archiver_write_errors_total", "Batches whose DB write failed (retried, not skipped)"
)
ARCHIVER_UP = Gauge("em_archiver_up", "1 while the archiver consumes")
ORPHAN_ENDED = Counter(
    "em_archiver_orphan_ended_alerts_total", "…_ended alerts whose alert was not (yet) stored"
)
RETENTION_LAST_RUN = Gauge(
    "em_retention_last_run_timestamp_seconds", "Unix time the retention job last completed"
)
RETENTION_DELETED = Counter(
    "em_retention_deleted_rows_total",
    "Rows deleted (alerts: locations erased, batch_files: files) by retention",
    ["table"],
)
ALERTS_ESCALATED = Counter(
    "em_alerts_escalated_total",
    "Critical alerts escalated because nobody acknowledged them in time",
    ["level"],
)
ESCALATION_LAST_RUN = Gauge(
    "em_escalation_last_run_timestamp_seconds", "Unix time the escalation job last completed"
)

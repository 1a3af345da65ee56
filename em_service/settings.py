"""Typed, documented configuration: one field per setting, read from ``EM_*`` environment variables.

Every setting has its default and unit in its name (``_m`` metres, ``_s`` seconds, ``_bytes``).
Nothing heavy is built at import time: call :func:`get_settings`.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookTarget(BaseModel):
    """One webhook receiver: which alerts it gets (all, one principal's caseload, a role's
    caseloads, or listed offenders) and, optionally, its own signing key."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="Short name (metric label)"
    )
    url: str = Field(description="http(s) URL the signed alert events are POSTed to")
    principal: str | None = Field(None, description="Only alerts on this principal's caseload")
    role: Literal["officer", "investigator", "ops", "admin"] | None = Field(
        None, description="Only alerts on caseloads of principals with this role"
    )
    offender_ids: list[str] = Field([], description="Only alerts of these offenders")
    secret: SecretStr | None = Field(None, description="HMAC key; default EM_WEBHOOK_SECRET")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("webhook url must start with http:// or https://")
        return url


class Settings(BaseSettings):
    """All settings of the service; environment variable = ``EM_`` + field name in upper case."""

    model_config = SettingsConfigDict(env_prefix="EM_", env_file=None, extra="ignore")

    # --- Kafka -----------------------------------------------------------------------------
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,…]"
    )
    kafka_version: str = Field("4.4.0", description="Apache Kafka release that `devstack` fetches")
    kafka_port: int = Field(9092, description="devstack: broker listener port on 127.0.0.1")
    kafka_controller_port: int = Field(
        9093, description="devstack: KRaft controller port on 127.0.0.1"
    )
    kafka_heap: str = Field("-Xmx768m -Xms256m", description="devstack: JVM heap options")

    kafka_max_message_bytes: int = Field(
        1_048_576,
        ge=1,
        description="Largest Kafka record batch: every producer's max_request_size, the devstack "
        "broker's message.max.bytes and the max.message.bytes of the topics the service creates; "
        "the worker refuses to start if a topic it writes accepts less",
    )

    topic_readings: str = Field("em.readings", description="Tag readings in (key = device_id)")
    topic_alerts: str = Field("em.alerts", description="Alerts out (key = offender_id)")
    topic_scenes: str = Field("em.scenes", description="Reported crime scenes (key = scene_id)")
    topic_conditions: str = Field("em.conditions", description="Compacted, key = offender_id")
    topic_dlq: str = Field(
        "em.readings.dlq", description="Invalid or poison records with a reason (readings, scenes…)"
    )
    topic_victim_readings: str = Field(
        "em.victim_readings",
        description="Protected victims' GPS fixes (reading contract, key = victim device); "
        "never archived, kept only retention_victim_s",
    )
    topic_victim_dlq: str = Field(
        "em.victim_readings.dlq",
        description="Invalid victim readings with a reason (kept as briefly as the victim topic)",
    )
    topic_partitions: int = Field(4, description="Partitions for topics the service creates")

    app_id: str = Field(
        "em-service",
        description="Worker id: consumer group, transactional id and changelog topic prefix",
    )

    # --- Paths -----------------------------------------------------------------------------
    state_dir: Path = Field(
        Path("~/.local/state/em-service"), description="Broker data, pids, logs, tables, database"
    )
    cache_dir: Path = Field(
        Path("~/.cache/em-service"), description="Downloaded Kafka jars (never committed)"
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite file em.db under state_dir"
    )
    database_migrate_url: str | None = Field(
        None,
        description="URL that migrations run with (PostgreSQL: the schema owner role); "
        "default EM_DATABASE_URL",
    )
    postgres_port: int = Field(55432, description="Port of the devstack PostgreSQL (127.0.0.1)")

    # --- Validation of readings ------------------------------------------------------------
    max_message_bytes: int = Field(
        16_384,
        ge=1,
        description="Larger readings are dead-lettered with their first this many bytes; must "
        "fit a dead letter under EM_KAFKA_MAX_MESSAGE_BYTES (checked at worker start)",
    )
    max_future_skew_s: float = Field(
        300.0, description="Readings stamped further than this in the future are dead-lettered"
    )
    max_past_age_s: float = Field(
        400 * 86400.0,
        description="Readings older than this (by the rule clock) are dead-lettered as absurd",
    )
    dlq_unknown_devices: bool = Field(
        False, description="Also dead-letter readings from devices no one is enrolled with"
    )
    fail_fast: bool = Field(
        False,
        description="Debugging: an error while processing a record stops the consumer "
        "(default: the record is dead-lettered as processing_error and the next one goes on)",
    )

    # --- Streaming rules -------------------------------------------------------------------
    silence_buffer_s: float = Field(
        600.0, description="A tag is silent after its reporting interval plus this buffer"
    )
    rule_clock: Literal["wall", "event"] = Field(
        "wall",
        description="Clock of timer rules (silence, reorder flush, window ends): wall time, or "
        "the stream's event-time watermark (for replays and accelerated simulations)",
    )
    wall_clock_offset_s: float = Field(
        0.0,
        description="Shift the service's wall clock by this many seconds (tests run the real "
        "processes as if it were another date; 0 in production)",
    )
    tick_interval_s: float = Field(
        10.0, description="How often the worker checks silence and flushes reorder buffers"
    )
    startup_grace_s: float = Field(
        120.0, description="No silence alerts until the worker has run this long (catch-up)"
    )
    batch_max: int = Field(
        250,
        ge=1,
        description="Readings evaluated together (vectorised zone verdicts) at most; smaller "
        "batches let commits progress sooner (latency), larger ones amortise more",
    )
    commit_interval_s: float = Field(
        0.1,
        gt=0,
        description="Transaction commit interval, s (alerts become visible at the commit)",
    )
    heard_window_s: float = Field(
        900.0,
        gt=0,
        description="em_devices_heard_recently counts enrolled devices heard within this window",
    )
    session_timeout_s: float = Field(
        10.0, description="Kafka consumer session timeout: how soon a dead worker's partitions move"
    )
    late_after_s: float = Field(
        300.0, description="A reading older than the stream clock by more than this is late"
    )
    alert_on_info: bool = Field(
        False, description="Also alert on context events (charging, strap restored)"
    )
    victim_fix_max_age_s: float = Field(
        180.0,
        gt=0,
        description="victim_proximity: a victim's fix is compared with a person's fix only if it "
        "is at most this much older (event time)",
    )
    retention_victim_s: float = Field(
        3600.0,
        gt=0,
        description="Victims' fixes are kept this long: retention.ms of the victim topic, and in "
        "the worker's memory behind the rule clock",
    )
    possible_only_severity: Literal["low", "medium", "high"] = Field(
        "medium", description="Severity of a breach episode with only 'possible' evidence"
    )

    # --- Geography and time ----------------------------------------------------------------
    projected_crs: str = Field("EPSG:27700", description="Projected CRS in metres for all geometry")
    timezone: str = Field("Europe/London", description="Default local timezone for schedules")

    # --- HTTP ------------------------------------------------------------------------------
    worker_metrics_port: int = Field(9108, description="Worker Prometheus /metrics port")
    worker_metrics_host: str = Field("127.0.0.1", description="Worker /metrics bind address")
    api_host: str = Field("127.0.0.1", description="API bind address")
    api_port: int = Field(8000, description="API port")

    # --- Store: database, trail archive, retention ---------------------------------------
    db_auto_upgrade: bool = Field(
        True, description="API and archiver apply pending migrations when they start"
    )
    sqlite_busy_timeout_s: float = Field(
        10.0, description="SQLite: wait up to this long for another writer's lock"
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        "FULL", description="SQLite synchronous pragma; FULL: a commit survives power loss"
    )
    trail_retention_days: float = Field(
        365.0, description="Fixes and alcohol readings older than this (event time) are deleted"
    )
    archiver_batch_max_records: int = Field(
        5000, ge=1, description="Most Kafka records the archiver writes in one DB transaction"
    )
    archiver_poll_timeout_s: float = Field(
        0.1, gt=0, description="Archiver: longest wait for records before writing what it has"
    )
    archiver_retention_interval_s: float = Field(
        3600.0, gt=0, description="How often the archiver runs the retention job"
    )
    archiver_metrics_port: int = Field(9110, description="Archiver Prometheus /metrics port")
    archiver_metrics_host: str = Field("127.0.0.1", description="Archiver /metrics bind address")

    # --- API: pages, trails, streams, metrics --------------------------------------------
    trail_max_window_s: float = Field(
        7 * 86400.0, gt=0, description="Longest time range one trail request may read"
    )
    sse_poll_interval_s: float = Field(
        0.2, gt=0, description="How often the API looks for new alert events to stream"
    )
    sse_recheck_interval_s: float = Field(
        30.0,
        gt=0,
        le=30,
        description="An open alert stream re-checks its token or session and the caseload this "
        "often and ends when either changed",
    )
    sse_max_lifetime_s: float = Field(
        3600.0, gt=0, description="An alert stream ends after this long (clients reconnect)"
    )
    api_shutdown_grace_s: float = Field(
        3.0, gt=0, description="On shutdown, close open streams (SSE) after this long"
    )
    api_max_body_bytes: int = Field(
        65_536, ge=1, description="Largest request body of any route but conditions (else 413)"
    )
    api_conditions_max_body_bytes: int = Field(
        1_048_576, ge=1, description="Largest body of PUT /api/v1/offenders/{id}/conditions"
    )
    metrics_public: bool = Field(
        False, description="Serve the API's /metrics without a token (default: ops or admin)"
    )
    conditions_publish_timeout_s: float = Field(
        10.0, gt=0, description="Longest wait for Kafka to acknowledge published conditions"
    )

    # --- Audit checkpoints (em_service/store/checkpoints.py) --------------------------------
    audit_checkpoint_key_file: Path | None = Field(
        None,
        description="File holding the HMAC key that signs audit checkpoints (≥ 32 bytes; "
        "readable by the service, not by the database user; never committed)",
    )
    audit_checkpoint_key: SecretStr | None = Field(
        None, description="The checkpoint key itself (environment only), if no key file"
    )
    audit_checkpoint_file: Path | None = Field(
        None,
        description="Append-only checkpoint file; default audit-checkpoints.jsonl in state_dir",
    )
    audit_checkpoint_interval_s: float = Field(
        3600.0, gt=0, description="The API writes a checkpoint this often (when a key is set)"
    )

    # --- Officer's console (pages under /console) ----------------------------------------
    console_tile_url: str = Field(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="Map tile URL template; empty: no tiles (plain background, fully offline)",
    )
    console_tile_attribution: str = Field(
        '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
        description="Attribution shown on the map for the tiles",
    )
    console_session_idle_s: float = Field(
        1800.0, gt=0, description="A console session ends after this long without a request"
    )
    console_session_max_s: float = Field(
        43200.0, gt=0, description="A console session ends this long after sign-in, whatever"
    )

    # --- Webhook outlet --------------------------------------------------------------------
    webhooks: list[WebhookTarget] = Field(
        [], description='Webhook targets, JSON list (EM_WEBHOOKS=\'[{"name":…,"url":…}]\')'
    )
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key for webhook signatures (set in the environment only)"
    )
    webhook_timeout_s: float = Field(5.0, gt=0, description="One webhook POST, whole request")
    webhook_max_attempts: int = Field(5, ge=1, description="Attempts per event before giving up")
    webhook_backoff_initial_s: float = Field(0.5, gt=0, description="First retry delay")
    webhook_backoff_max_s: float = Field(30.0, gt=0, description="Longest retry delay")
    webhook_poll_interval_s: float = Field(
        0.5, gt=0, description="How often each webhook target looks for new alert events"
    )

    def state_changelog_topic(self) -> str:
        """Return the compacted topic holding the worker's device states (key = device_id)."""
        return f"{self.app_id}-device-state-changelog"

    def resolved_state_dir(self) -> Path:
        """Return the state directory, expanded and created private (0700: it holds the
        database, logs, broker data and audit checkpoints). Nobody else may list or write it; a
        traverse-only bit someone set on purpose (0711, so the devstack's PostgreSQL, running as
        the ``postgres`` user, reaches its own cluster dir inside) is kept."""
        path = self.state_dir.expanduser()
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777
        if mode & 0o066:  # readable or writable by others: make it private again
            with contextlib.suppress(PermissionError):
                path.chmod(0o700)
        return path

    def resolved_cache_dir(self) -> Path:
        """Return the cache directory, expanded and created."""
        path = self.cache_dir.expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to a SQLite file under the state dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_state_dir() / 'em.db'}"

    def resolved_migrate_url(self) -> str:
        """Return the URL migrations run with (the owner role), defaulting to the database URL."""
        return self.database_migrate_url or self.resolved_database_url()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once from the environment)."""
    return Settings()

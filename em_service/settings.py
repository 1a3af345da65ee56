"""Typed, documented configuration: one field per setting, read from ``EM_*`` environment variables.

Every setting has its default and unit in its name (``_m`` metres, ``_s`` seconds, ``_bytes``).
Nothing heavy is built at import time: call :func:`get_settings`.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
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
    kinds: list[Literal["created", "ended", "acknowledged", "closed", "escalated"]] = Field(
        [], description="Only these event kinds (default: all)"
    )
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
    kafka_secure_port: int = Field(
        9094, description="devstack: SASL_SSL listener port on 127.0.0.1 (`devstack up --secure`)"
    )
    kafka_heap: str = Field("-Xmx768m -Xms256m", description="devstack: JVM heap options")

    kafka_max_message_bytes: int = Field(
        1_048_576,
        ge=1,
        description="Largest Kafka record batch: every producer's max_request_size, the devstack "
        "broker's message.max.bytes and the max.message.bytes of the topics the service creates; "
        "the worker refuses to start if a topic it writes accepts less",
    )

    # --- Kafka authentication and encryption (SECURITY.md "Kafka authentication and ACLs") ---
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"] = Field(
        "PLAINTEXT",
        description="Protocol of every Kafka client (worker, archiver, API, CLI): PLAINTEXT "
        "(devstack default), SSL (TLS), SASL_SSL (TLS + SCRAM login: production) or "
        "SASL_PLAINTEXT (login without encryption; tests only)",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (PLAIN only over SASL_SSL)"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user of this service")
    kafka_sasl_password: SecretStr | None = Field(
        None, description="SASL password (environment only), if no password file"
    )
    kafka_sasl_password_file: Path | None = Field(
        None, description="File holding the SASL password (first line; never committed)"
    )
    kafka_ssl_cafile: Path | None = Field(
        None, description="PEM CA bundle that signs the brokers' certificates (default: system)"
    )
    kafka_ssl_certfile: Path | None = Field(
        None, description="PEM client certificate (mutual TLS), with EM_KAFKA_SSL_KEYFILE"
    )
    kafka_ssl_keyfile: Path | None = Field(None, description="PEM private key of the certificate")
    kafka_ssl_check_hostname: bool = Field(
        True, description="Check that the broker's certificate names the host connected to"
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

    # --- Logs (em_service/logs.py) ---------------------------------------------------------
    log_file: Path | None = Field(
        None,
        description="Log file of a worker, archiver or API process, rotated by size (0600); "
        "default stderr. `em-service demo` sets <state_dir>/<name>.log",
    )
    log_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Rotate the log file when it reaches this size"
    )
    log_backups: int = Field(5, ge=0, description="Rotated log files kept (name.log.1 … .N)")
    log_repeat_interval_s: float = Field(
        10.0,
        gt=0,
        description="A warning or error with the same logger and message template is written "
        "at most once per this interval; the repeats are counted in one summary line",
    )

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
    max_zone_vertices: int = Field(
        5_000,
        ge=4,
        description="Most vertices of one polygon (zone, curfew or appointment place; holes "
        "included) in conditions; more is refused (422 / rejected), not simplified",
    )
    max_conditions_vertices: int = Field(
        20_000,
        ge=4,
        description="Most polygon vertices in one conditions document (bounds compile time on "
        "the worker's event loop at each apply and restart)",
    )
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
        365.0,
        description="Fixes and alcohol readings older than this (event time) are deleted and "
        "alert locations erased (em_service/store/retention.py)",
    )
    scene_retention_days: float | None = Field(
        None,
        gt=0,
        description="Crime scenes, their matches (evidence) and crime batches are deleted this "
        "long after their window (default: trail_retention_days)",
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
    api_docs_enabled: bool = Field(
        True,
        description="Serve /docs, /redoc and /openapi.json (set false in production: 404 then)",
    )
    api_auth_failures_max: int = Field(
        10, ge=1, description="Failed authentications per client and window before 429"
    )
    api_auth_failures_window_s: float = Field(
        60.0, gt=0, description="Window of the failed-authentication limit (and its Retry-After)"
    )
    api_auth_throttle_max_clients: int = Field(
        10_000, ge=1, description="Clients tracked by the failure limit (least recent forgotten)"
    )
    api_trusted_proxies: list[str] = Field(
        [],
        description="Reverse proxies (IPs or CIDRs, JSON list) whose X-Forwarded-For names the "
        "client; empty: the peer address is the client",
    )

    # --- API tokens (em_service/store/tokens.py) -------------------------------------------
    token_ttl_days: float = Field(
        90.0, gt=0, description="A new or renewed token works this many days"
    )
    token_max_ttl_days: float = Field(
        366.0, gt=0, description="Longest lifetime an admin may give a token"
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
    evidence_tile_url: str = Field(
        "",
        description="Base map of the evidence pack's map image: an XYZ Web-Mercator PNG tile "
        "URL template with {z}, {x} and {y}. Empty (the default): no base map. Every export "
        "then sends the scene's surroundings (tile coordinates) to this server, so point it only "
        "at the force's own tile server, never a public one; the template is written into every "
        "pack, so put no key in it",
    )
    evidence_tile_attribution: str = Field(
        "", description="Attribution of the evidence base map, printed in the image's caption"
    )
    evidence_tile_timeout_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Time limit of fetching all the tiles of one evidence image (the export "
        "waits for it, then goes on without a base map)",
    )
    console_session_idle_s: float = Field(
        1800.0, gt=0, description="A console session ends after this long without a request"
    )
    console_session_max_s: float = Field(
        43200.0, gt=0, description="A console session ends this long after sign-in, whatever"
    )

    # --- Escalation (archiver) ------------------------------------------------------------
    escalate_after_s: float = Field(
        600.0,
        gt=0,
        description="A critical alert still unacknowledged this long after it was stored is "
        "escalated (level 1); at twice this, level 2",
    )
    escalation_interval_s: float = Field(
        15.0, gt=0, description="How often the archiver looks for alerts to escalate"
    )
    escalation_webhook_url: str | None = Field(
        None,
        description="Duty channel: escalated events are also POSTed here (signed with "
        "EM_WEBHOOK_SECRET, like every webhook)",
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

    @model_validator(mode="after")
    def _kafka_security(self) -> Settings:
        """Refuse a combination of Kafka security settings that would connect other than meant
        (e.g. a user name with PLAINTEXT would silently send no credentials)."""
        protocol = self.kafka_security_protocol
        sasl = protocol.startswith("SASL_")
        tls = protocol.endswith("SSL")
        has_password = self.kafka_sasl_password is not None
        has_file = self.kafka_sasl_password_file is not None
        if sasl and not self.kafka_sasl_username:
            raise ValueError(f"EM_KAFKA_SECURITY_PROTOCOL={protocol} needs EM_KAFKA_SASL_USERNAME")
        if sasl and has_password == has_file:
            raise ValueError(
                f"EM_KAFKA_SECURITY_PROTOCOL={protocol} needs exactly one of "
                "EM_KAFKA_SASL_PASSWORD and EM_KAFKA_SASL_PASSWORD_FILE"
            )
        if not sasl and (self.kafka_sasl_username or has_password or has_file):
            raise ValueError(
                f"SASL credentials are set but EM_KAFKA_SECURITY_PROTOCOL={protocol} would not "
                "send them: use SASL_SSL"
            )
        if protocol == "SASL_PLAINTEXT" and self.kafka_sasl_mechanism == "PLAIN":
            raise ValueError("EM_KAFKA_SASL_MECHANISM=PLAIN would send the password in clear")
        files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if not tls and any(files):
            raise ValueError(
                f"EM_KAFKA_SSL_* files are set but EM_KAFKA_SECURITY_PROTOCOL={protocol} uses "
                "no TLS: use SSL or SASL_SSL"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("EM_KAFKA_SSL_CERTFILE and EM_KAFKA_SSL_KEYFILE go together")
        return self

    @field_validator("evidence_tile_url")
    @classmethod
    def _tile_template(cls, url: str) -> str:
        if not url:
            return url
        if not url.startswith(("http://", "https://")):
            raise ValueError("EM_EVIDENCE_TILE_URL must start with http:// or https://")
        try:
            url.format(z=0, x=0, y=0)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError("EM_EVIDENCE_TILE_URL may hold only {z}, {x} and {y}") from exc
        if not all(f"{{{k}}}" in url for k in "zxy"):
            raise ValueError("EM_EVIDENCE_TILE_URL needs {z}, {x} and {y}")
        return url

    @field_validator("escalation_webhook_url")
    @classmethod
    def _duty_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("escalation webhook url must start with http:// or https://")
        return url

    def webhook_targets(self) -> list[WebhookTarget]:
        """Return the webhook targets: ``webhooks`` and, if set, the duty channel ``duty``
        (escalated events only)."""
        if not self.escalation_webhook_url:
            return list(self.webhooks)
        duty = WebhookTarget(name="duty", url=self.escalation_webhook_url, kinds=["escalated"])
        return [*self.webhooks, duty]

    @field_validator("api_trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError: not an address or CIDR
        return value

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

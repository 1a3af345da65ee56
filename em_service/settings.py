"""Typed, documented configuration: one field per setting, read from ``EM_*`` environment variables.

Every setting has its default and unit in its name (``_m`` metres, ``_s`` seconds, ``_bytes``).
Nothing heavy is built at import time: call :func:`get_settings`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    topic_readings: str = Field("em.readings", description="Tag readings in (key = device_id)")
    topic_alerts: str = Field("em.alerts", description="Alerts out (key = offender_id)")
    topic_scenes: str = Field("em.scenes", description="Reported crime scenes (key = scene_id)")
    topic_conditions: str = Field("em.conditions", description="Compacted, key = offender_id")
    topic_dlq: str = Field("em.readings.dlq", description="Invalid readings with a reason")
    topic_partitions: int = Field(4, description="Partitions for topics the service creates")

    app_id: str = Field("em-service", description="Faust app id (consumer group and table prefix)")

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

    # --- Validation of readings ------------------------------------------------------------
    max_message_bytes: int = Field(16_384, description="Larger readings are dead-lettered")
    max_future_skew_s: float = Field(
        300.0, description="Readings stamped further than this in the future are dead-lettered"
    )
    max_past_age_s: float = Field(
        400 * 86400.0, description="Readings older than this are dead-lettered as absurd"
    )
    dlq_unknown_devices: bool = Field(
        False, description="Also dead-letter readings from devices no one is enrolled with"
    )

    # --- Geography and time ----------------------------------------------------------------
    projected_crs: str = Field("EPSG:27700", description="Projected CRS in metres for all geometry")
    timezone: str = Field("Europe/London", description="Default local timezone for schedules")

    # --- HTTP ------------------------------------------------------------------------------
    worker_metrics_port: int = Field(9108, description="Worker Prometheus /metrics port")
    worker_metrics_host: str = Field("127.0.0.1", description="Worker /metrics bind address")
    worker_web_port: int = Field(6066, description="Faust web port of the worker")
    api_host: str = Field("127.0.0.1", description="API bind address")
    api_port: int = Field(8000, description="API port")

    def resolved_state_dir(self) -> Path:
        """Return the state directory, expanded and created."""
        path = self.state_dir.expanduser()
        path.mkdir(parents=True, exist_ok=True)
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once from the environment)."""
    return Settings()

"""Run real service processes (``em-service worker``…) against the test broker, isolated.

Each :class:`ServiceEnv` has its own topic names, app id, state dir and ports, so tests can
share one broker without seeing each other's messages.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from em_service.settings import Settings


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServiceEnv:
    """Environment for service processes of one test: unique topics, app id, dirs, ports."""

    bootstrap: str
    state_dir: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    procs: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.metrics_port = free_port()
        self.api_port = free_port()
        self.env = {
            "EM_KAFKA_BOOTSTRAP": self.bootstrap,
            "EM_APP_ID": f"em-test-{self.tag}",
            "EM_STATE_DIR": str(self.state_dir),
            "EM_WORKER_METRICS_PORT": str(self.metrics_port),
            "EM_API_PORT": str(self.api_port),
            **{
                f"EM_TOPIC_{name.upper()}": f"t{self.tag}.{name}"
                for name in (
                    "readings",
                    "alerts",
                    "scenes",
                    "conditions",
                    "dlq",
                    "victim_readings",
                    "victim_dlq",
                )
            },
        }
        self.settings = Settings(**{k[3:].lower(): v for k, v in self.env.items()})

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, *args: str, log_name: str = "proc") -> subprocess.Popen:
        """Start ``em-service *args`` with this environment; it is stopped by :meth:`stop_all`."""
        log = open(self.state_dir / f"{log_name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "em_service.cli", *args],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, log_name: str = "proc") -> str:
        path = self.state_dir / f"{log_name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(
        self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = 30
    ) -> None:
        """Stop one process (its whole group) and wait for it."""
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def wait_until(
        self, predicate, timeout_s: float, what: str = "condition", interval_s: float = 0.2
    ):
        """Like :func:`wait_until`, but fail at once (with the log) if a service process died."""

        def check():
            for proc in self.procs:
                if proc.poll() is not None:
                    logs = "\n".join(
                        p.read_text(errors="replace")[-3000:] for p in self.state_dir.glob("*.log")
                    )
                    raise RuntimeError(f"service exited with {proc.returncode}:\n{logs}")
            return predicate()

        return wait_until(check, timeout_s, interval_s, what=what, fatal=(RuntimeError,))

    def start_archiver_and_api(self) -> str:
        """Start the archiver and the API; wait until the API answers and the archiver has joined
        its group (its metrics port is ``EM_ARCHIVER_METRICS_PORT``, set here if unset); return
        the API's base URL."""
        from em_service.scrape import scrape, total

        port = self.env.setdefault("EM_ARCHIVER_METRICS_PORT", str(free_port()))
        base = f"http://127.0.0.1:{self.api_port}"
        self.start("archiver", log_name="archiver")
        self.start("api", log_name="api")
        self.wait_until(
            lambda: httpx.get(f"{base}/healthz", timeout=1).status_code == 200, 30, what="the API"
        )
        assigned = lambda: total(  # noqa: E731
            scrape(f"http://127.0.0.1:{port}/metrics"), "em_archiver_assigned_partitions"
        )
        self.wait_until(lambda: assigned() > 0, 60, what="the archiver to join its group")
        return base

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc)


def wait_until(
    predicate,
    timeout_s: float,
    interval_s: float = 0.2,
    what: str = "condition",
    fatal: tuple[type[Exception], ...] = (),
):
    """Poll ``predicate`` until it returns a truthy value (returned) or fail after ``timeout_s``.

    Exceptions of the ``fatal`` types end the wait at once; others are retried.
    """
    deadline = time.monotonic() + timeout_s
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except fatal:
            raise
        except Exception as exc:  # keep polling; report the last error on timeout
            last_exc = exc
        time.sleep(interval_s)
    raise AssertionError(
        f"timed out after {timeout_s} s waiting for {what} (last error: {last_exc})"
    )

"""Background service processes (worker, API) with pid files under the state dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def alive(pid: int) -> bool:
    """Return True if ``pid`` names a running (non-zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def read_pid(pid_file: Path) -> int | None:
    """Return the live pid recorded in ``pid_file``, or None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


def spawn(name: str, args: list[str], state_dir: Path, env: dict[str, str] | None = None) -> int:
    """Start ``python -m em_service.cli *args`` detached, logging to ``<name>.log``; return pid.

    The process gets ``EM_LOG_FILE=<name>.log``: it rotates that file by size (em_service.logs),
    and its stdout and stderr, pointed at the same file, follow it.

    Reuses the process named in ``<name>.pid`` if it is still running.
    """
    pid_file = state_dir / f"{name}.pid"
    existing = read_pid(pid_file)
    if existing:
        return existing
    log_file = state_dir / f"{name}.log"
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    log = os.fdopen(fd, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "em_service.cli", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "EM_LOG_FILE": str(log_file), **(env or {})},
        umask=0o077,  # what the service writes (logs, database, checkpoints) is private
    )
    log.close()
    pid_file.write_text(str(proc.pid))
    return proc.pid


def stop(name: str, state_dir: Path, timeout_s: float = 20.0) -> bool:
    """Stop the process named in ``<name>.pid`` (TERM, then KILL); return True if one ran."""
    pid_file = state_dir / f"{name}.pid"
    pid = read_pid(pid_file)
    pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        os.killpg(pid, signal.SIGKILL)
    return True

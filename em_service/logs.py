"""Logging of the service processes (worker, archiver, API): one handler on the root logger.

* **Repeats are rate-limited.** A warning or error whose logger, level and message template
  (``record.msg``, not its arguments) were already written in the last ``EM_LOG_REPEAT_INTERVAL_S``
  is counted, not written; when the interval is over one line says ``[repeated N times in the
  last 10 s]`` (with the last one's text). While the repeats go on, each interval is twice the
  one before (10 s, 20 s, 40 s … up to 32 times the first); a quiet interval starts again at
  10 s. A broker outage, where aiokafka logs each failed reconnect (about 150 lines/s per
  process), gives a few lines a minute. Info lines pass.
* **Files rotate by size.** With ``EM_LOG_FILE`` set (``procs.spawn`` sets it to
  ``<state>/<name>.log``) records go to that file, rotated at ``EM_LOG_MAX_BYTES`` with
  ``EM_LOG_BACKUPS`` old files kept; every file is created 0600. If the process's stdout and
  stderr were that file (as ``procs.spawn`` starts it), they follow it to the new file after each
  rotation, so a traceback never lands in an old one. Without ``EM_LOG_FILE``: stderr (under a
  container or systemd, whose log store rotates).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from em_service.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Libraries logged at WARNING and above only: aiokafka (each reconnect), httpx/httpcore (each
#: request, with its URL: a webhook target's URL may carry a secret).
NOISY = ("aiokafka", "httpx", "httpcore")


#: While repeats go on, the interval doubles up to this many times the first.
MAX_INTERVAL_FACTOR = 32


@dataclass(slots=True)
class _Seen:
    since: float  # start of the current interval (monotonic)
    span: float  # its length, s
    repeats: int = 0
    last: logging.LogRecord | None = None


class RepeatLimiter(logging.Handler):
    """Pass records to ``target``; a warning or worse seen in the last ``interval_s`` (same
    logger, level and template) is counted instead, and summed up once the interval is over.

    Summaries are written by a daemon thread every ``interval_s / 2`` (and by :meth:`flush` and
    :meth:`close`), so the count of a burst is written even if the burst has stopped.
    """

    def __init__(
        self,
        target: logging.Handler,
        interval_s: float = 10.0,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
        *,
        timer: bool = True,
    ) -> None:
        super().__init__()
        self.target = target
        self.interval_s = interval_s
        self.min_level = min_level
        self.clock = clock
        self._seen: dict[tuple[str, int, str], _Seen] = {}
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        if timer:
            threading.Thread(target=self._tick, name="log-repeats", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < self.min_level:
            self.target.handle(record)
            return
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._mutex:
            due = self._due(now)
            seen = self._seen.get(key)
            if seen is not None:  # counted, not written
                seen.repeats += 1
                seen.last = record
            else:
                self._seen[key] = _Seen(now, self.interval_s)
        for summary in due:
            self.target.handle(summary)
        if seen is None:
            self.target.handle(record)

    def _due(self, now: float) -> list[logging.LogRecord]:
        """Under the mutex: end every interval that is over; return the summaries to write."""
        summaries = []
        for k, seen in list(self._seen.items()):
            if now - seen.since < seen.span:
                continue
            if seen.repeats and seen.last is not None:
                summaries.append(self._summary(seen.last, seen.repeats, seen.span))
                longer = min(seen.span * 2, self.interval_s * MAX_INTERVAL_FACTOR)
                self._seen[k] = _Seen(now, longer)  # a flood goes on: count on, for longer
            else:
                del self._seen[k]  # quiet for a whole interval: the next one is written again
        return summaries

    @staticmethod
    def _summary(last: logging.LogRecord, repeats: int, span: float) -> logging.LogRecord:
        summary = logging.makeLogRecord(last.__dict__)
        summary.msg = f"{last.getMessage()} [repeated {repeats} times in the last {span:g} s]"
        summary.args = None
        summary.exc_info = summary.exc_text = summary.stack_info = None
        summary.created = time.time()
        summary.msecs = (summary.created % 1) * 1000
        return summary

    def _tick(self) -> None:
        while not self._stop.wait(self.interval_s / 2):
            self.write_due()

    def write_due(self) -> None:
        """Write the summaries of intervals that are over."""
        with self._mutex:
            due = self._due(self.clock())
        for summary in due:
            self.target.handle(summary)

    def flush(self) -> None:
        """Write every pending count (an interval not yet over included), then flush."""
        with self._mutex:
            due = [
                self._summary(s.last, s.repeats, s.span)
                for s in self._seen.values()
                if s.repeats and s.last is not None
            ]
            self._seen.clear()
        for summary in due:
            self.target.handle(summary)
        self.target.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()
        self.target.close()
        super().close()

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        self.target.setFormatter(fmt)


class PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """A size-rotated log file whose files are all 0600; keeps stdout/stderr on the current file
    if they were pointed at it when the handler was made."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self._follow: list[int] = []
        if path.exists():
            here = path.stat()
            for fd in (1, 2):
                try:
                    if os.path.samestat(os.fstat(fd), here):
                        self._follow.append(fd)
                except OSError:
                    pass
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)  # also a file someone made before with a looser mode
        stream = open(fd, "a", encoding=self.encoding, errors=self.errors)  # noqa: SIM115
        for target in getattr(self, "_follow", ()):
            os.dup2(fd, target)
        return stream


def configure(settings: Settings, level: str | int = "INFO") -> logging.Handler:
    """Install the service's log handler on the root logger (replacing any) and return it.

    aiokafka's loggers go through it too (at WARNING or above, like the others in :data:`NOISY`).
    """
    if settings.log_file is not None:
        path = Path(settings.log_file).expanduser()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        target: logging.Handler = PrivateRotatingFile(
            path, settings.log_max_bytes, settings.log_backups
        )
    else:
        target = logging.StreamHandler()
    target.setFormatter(logging.Formatter(FORMAT))
    handler = RepeatLimiter(target, settings.log_repeat_interval_s)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler

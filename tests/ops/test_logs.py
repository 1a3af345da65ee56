"""Issue 13 finding 9: repeated errors are rate-limited, log files rotate by size and stay 0600."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from em_service import logs
from em_service.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _limited(interval_s: float = 10.0) -> tuple[logging.Logger, Lines, logs.RepeatLimiter, Clock]:
    clock, out = Clock(), Lines()
    limiter = logs.RepeatLimiter(out, interval_s, clock=clock, timer=False)
    logger = logging.Logger("aiokafka")  # not registered: this test's own logger
    logger.addHandler(limiter)
    return logger, out, limiter, clock


def test_a_thousand_identical_errors_in_a_second_give_two_lines_with_the_count() -> None:
    logger, out, limiter, clock = _limited()
    for i in range(1000):
        clock.now = 1000.0 + i / 1000  # 1,000 within one second, each a different port
        logger.error('Unable connect to "%s": %s', f"127.0.0.1:{i}", "refused")
    assert out.lines == ['Unable connect to "127.0.0.1:0": refused']
    clock.now = 1010.0
    limiter.write_due()
    assert out.lines[1:] == [
        'Unable connect to "127.0.0.1:999": refused [repeated 999 times in the last 10 s]'
    ]


def test_a_long_flood_gives_summaries_at_doubling_intervals_and_the_count_adds_up() -> None:
    logger, out, limiter, clock = _limited()
    seconds = 600
    for i in range(seconds * 170):  # ten minutes of 170 lines/s, the timer ticking as in a process
        clock.now = 1000.0 + i / 170
        logger.error("Unable to update metadata from %s", [1])
        if i % 85 == 0:
            limiter.write_due()
    limiter.flush()
    spans = [line.rsplit("in the last ", 1)[1] for line in out.lines[1:]]
    assert spans[:5] == ["10 s]", "20 s]", "40 s]", "80 s]", "160 s]"]
    assert len(out.lines) <= 8  # 10 minutes: the first line and at most 7 summaries
    counts = [int(line.split("repeated ")[1].split()[0]) for line in out.lines[1:]]
    assert 1 + sum(counts) == seconds * 170


def test_templates_levels_and_loggers_are_counted_apart_and_info_passes() -> None:
    logger, out, limiter, _clock = _limited()
    other = logging.Logger("aiokafka.consumer.fetcher")
    other.addHandler(limiter)
    for _ in range(5):
        logger.error("a %s", 1)
        logger.warning("a %s", 1)
        logger.error("b %s", 1)
        other.error("a %s", 1)
        logger.info("applied %s", "off-1")
    assert len(out.lines) == 4 + 5
    assert out.lines.count("applied off-1") == 5


def test_after_a_quiet_interval_the_same_error_is_written_again() -> None:
    logger, out, _limiter, clock = _limited()
    logger.error("broker down")
    clock.now += 11
    logger.error("broker down")
    assert out.lines == ["broker down", "broker down"]


def test_the_first_record_keeps_its_traceback_and_the_summary_has_none() -> None:
    logger, out, limiter, _clock = _limited()
    out.setFormatter(logging.Formatter("%(message)s"))
    for _ in range(3):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("consumer failed")
    limiter.flush()
    assert "Traceback" in out.lines[0] and "RuntimeError: boom" in out.lines[0]
    assert out.lines[1] == "consumer failed [repeated 2 times in the last 10 s]"


def test_rotation_keeps_the_configured_backups_all_private(tmp_path: Path) -> None:
    log_file = tmp_path / "worker.log"
    old = os.umask(0o022)  # even a loose umask: the service's log files are 0600
    try:
        handler = logs.configure(
            Settings(log_file=log_file, log_max_bytes=4096, log_backups=3), "INFO"
        )
        logger = logging.getLogger("em_service.test_rotation")
        for i in range(400):
            logger.info("line %d %s", i, "x" * 60)
    finally:
        os.umask(old)
        logging.getLogger().removeHandler(handler)
        handler.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["worker.log", "worker.log.1", "worker.log.2", "worker.log.3"]
    for name in files:
        path = tmp_path / name
        assert path.stat().st_mode & 0o777 == 0o600, name
        assert path.stat().st_size <= 4096
    assert "line 399 " in (tmp_path / "worker.log").read_text()


def test_stdout_and_stderr_follow_the_log_file_when_it_rotates(tmp_path: Path) -> None:
    # As procs.spawn starts a service: stdout/stderr are the log file, EM_LOG_FILE names it.
    log_file = tmp_path / "svc.log"
    script = (
        "import logging, sys\n"
        "from em_service import logs\n"
        "from em_service.settings import Settings\n"
        f"logs.configure(Settings(log_file={str(log_file)!r}, log_max_bytes=2048, log_backups=2))\n"
        "for i in range(100): logging.getLogger('em').info('filler %d %s', i, 'y' * 50)\n"
        "print('after rotation on stdout', flush=True)\n"
        "raise SystemExit('fatal: on stderr')\n"
    )
    with open(log_file, "ab") as out:
        run = subprocess.run(
            [sys.executable, "-c", script], stdout=out, stderr=subprocess.STDOUT, timeout=60
        )
    assert run.returncode == 1
    current = log_file.read_text()
    assert "after rotation on stdout" in current and "fatal: on stderr" in current
    assert (tmp_path / "svc.log.1").exists()


@pytest.fixture(autouse=True)
def _root_handlers_restored():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)


def test_library_request_logs_stay_out_and_their_errors_go_through(tmp_path: Path) -> None:
    handler = logs.configure(Settings(log_file=tmp_path / "api.log"), "INFO")
    logging.getLogger("httpx").info("HTTP Request: POST https://hooks.example/x?secret=s1")
    logging.getLogger("aiokafka").error("Unable connect to node with id %s", 1)
    handler.flush()
    text = (tmp_path / "api.log").read_text()
    assert "secret=s1" not in text and "Unable connect to node with id 1" in text

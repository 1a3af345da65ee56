"""A local single-node Apache Kafka (KRaft, combined broker+controller) without Docker.

The broker's jars come from Maven Central through ``pom.xml`` beside this file and are cached
under ``<cache_dir>/kafka-<version>/libs``; its configuration, data, pid and logs live under
``<state_dir>/kafka/``. Everything here is synchronous; the Kafka calls use aiokafka inside.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import NewTopic

from em_service import kafka_io
from em_service.devstack import secure as sec
from em_service.scenes.config import get_scene_settings
from em_service.settings import Settings

#: umask of the broker and its tools: files it creates are readable by the owner only.
PRIVATE = 0o077

log = logging.getLogger(__name__)

T = TypeVar("T")

POM = Path(__file__).with_name("pom.xml")
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
JARS_MARKER = ".complete"
TOPIC_ALREADY_EXISTS = 36
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Packages that log a line per partition/segment/record batch at INFO: WARN is enough here.
NOISY_LOGGERS = (
    "kafka.request.logger",
    "state.change.logger",
    "kafka.log",
    "org.apache.kafka.storage",
    "org.apache.kafka.raft",
    "org.apache.kafka.image",
    "org.apache.kafka.metadata",
    "org.apache.kafka.snapshot",
    "org.apache.kafka.common.utils.AppInfoParser",
    "org.apache.kafka.clients",
    "kafka.server.metadata",
    "org.apache.kafka.server.config",
    "org.apache.kafka.common.config.AbstractConfig",  # dumps every config value, 6 times
)


class DevstackError(RuntimeError):
    """The local broker could not be fetched, started or stopped."""


@dataclass(frozen=True)
class BrokerInfo:
    """What is (or is not) answering on the devstack port."""

    bootstrap: str
    answering: bool
    pid: int | None  # pid of the broker this state dir manages, if it is alive
    version: str | None  # Kafka version of that broker (unknown for a foreign one)
    started: bool  # True if this very call launched the process
    managed: bool  # True if the broker is ours (pid file), False if foreign or none
    log_file: Path
    note: str = ""
    #: Secure mode: the SASL_SSL listener and the dir of its CA, passwords and env files.
    secure_bootstrap: str | None = None
    secure_dir: Path | None = None


@dataclass(frozen=True)
class _Paths:
    root: Path
    data: Path
    server_properties: Path
    log4j: Path
    pid: Path
    version: Path
    log: Path
    out: Path
    lock: Path
    mode: Path  # "secure" or "plaintext": how the running broker was started
    scram: Path  # exists when the storage was formatted with the SCRAM users

    @classmethod
    def of(cls, settings: Settings) -> _Paths:
        root = settings.resolved_state_dir() / "kafka"
        return cls(
            root=root,
            data=root / "data",
            server_properties=root / "server.properties",
            log4j=root / "log4j2.properties",
            pid=root / "kafka.pid",
            version=root / "kafka.version",
            log=root / "kafka.log",
            out=root / "kafka.out",
            lock=root / ".lock",
            mode=root / "kafka.mode",
            scram=root / "storage.scram",
        )


# --- jars ------------------------------------------------------------------------------------


def libs_dir(settings: Settings, version: str | None = None) -> Path:
    """Return ``<cache_dir>/kafka-<version>/libs`` (not created)."""
    return settings.resolved_cache_dir() / f"kafka-{version or settings.kafka_version}" / "libs"


def fetch_jars(settings: Settings, version: str | None = None) -> Path:
    """Copy the broker's jars from Maven Central into the cache, unless already complete."""
    version = version or settings.kafka_version
    libs = libs_dir(settings, version)
    if (libs / JARS_MARKER).exists():
        return libs
    with _locked(libs.parent / ".lock"):
        if not (libs / JARS_MARKER).exists():  # another process may have just fetched them
            _mvn_copy_dependencies(libs, version)
    return libs


def _mvn_copy_dependencies(libs: Path, version: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DevstackError("`mvn` (Apache Maven) is not on PATH; it is needed to fetch Kafka jars")
    libs.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        f"-Dkafka.version={version}",
    ]
    log.info("fetching Kafka %s jars into %s", version, libs)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not any(libs.glob(f"kafka_2.13-{version}.jar")):
        output = _ANSI.sub("", proc.stdout + proc.stderr)
        raise DevstackError(
            f"fetching Kafka {version} jars failed (exit {proc.returncode}):\n{_tail(output)}"
        )
    (libs / JARS_MARKER).write_text(f"kafka {version}\n")


# --- configuration ---------------------------------------------------------------------------


def server_properties(
    settings: Settings, data_dir: Path, secure: sec.SecureFiles | None = None
) -> str:
    """Return server.properties for a single combined-mode KRaft node on 127.0.0.1 (with a
    SASL_SSL listener on ``kafka_secure_port`` when ``secure``)."""
    port, cport = settings.kafka_port, settings.kafka_controller_port
    listeners = [f"PLAINTEXT://127.0.0.1:{port}"]
    if secure:
        listeners.append(f"SASL_SSL://127.0.0.1:{settings.kafka_secure_port}")
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        "listeners": ",".join([*listeners, f"CONTROLLER://127.0.0.1:{cport}"]),
        "advertised.listeners": ",".join(listeners),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        + (",SASL_SSL:SASL_SSL" if secure else ""),
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "4",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        # The largest record batch: the producers' max_request_size (see em_service.limits).
        "message.max.bytes": str(settings.kafka_max_message_bytes),
    }
    if secure:
        props |= sec.listener_properties(secure, settings.kafka_secure_port)
    return "".join(f"{key}={value}\n" for key, value in props.items())


def log4j_properties(log_file: Path) -> str:
    """Return a log4j2 configuration: INFO to ``log_file`` (rolling), WARN for noisy loggers."""
    lines = [
        "status = warn",
        "appender.file.type = RollingFile",
        "appender.file.name = FILE",
        f"appender.file.fileName = {log_file}",
        f"appender.file.filePattern = {log_file}.%i",
        "appender.file.layout.type = PatternLayout",
        "appender.file.layout.pattern = [%d] %p %m (%c)%n",
        "appender.file.policies.type = Policies",
        "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
        "appender.file.policies.size.size = 20MB",
        "appender.file.strategy.type = DefaultRolloverStrategy",
        "appender.file.strategy.max = 2",
        "rootLogger.level = INFO",
        "rootLogger.appenderRef.file.ref = FILE",
    ]
    for i, name in enumerate(NOISY_LOGGERS):
        lines += [f"logger.n{i}.name = {name}", f"logger.n{i}.level = WARN"]
    return "\n".join(lines) + "\n"


def _cluster_id() -> str:
    """Return a random Kafka cluster id (a UUID in URL-safe base64, as `random-uuid` prints)."""
    while True:  # like Kafka's Uuid.randomUuid: one starting with "-" would parse as an option
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise DevstackError("`java` (17 or newer) is not on PATH; it is needed to run Kafka")
    return java


def _jvm_args(settings: Settings, paths: _Paths, libs: Path) -> list[str]:
    return [
        _java(),
        *shlex.split(settings.kafka_heap),
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={paths.log4j}",
        f"-Dkafka.logs.dir={paths.root}",
        "-cp",
        f"{libs}/*",
    ]


def _format_storage(
    settings: Settings, paths: _Paths, libs: Path, secure: sec.SecureFiles | None = None
) -> None:
    if (paths.data / "meta.properties").exists():
        if secure and not paths.scram.exists():
            raise DevstackError(
                f"the broker storage in {paths.data} was formatted without --secure, so it has "
                "no SCRAM users: `devstack down`, remove that directory (its topics go with it), "
                "then `devstack up --secure`"
            )
        return
    paths.scram.unlink(missing_ok=True)
    cmd = [
        *_jvm_args(settings, paths, libs),
        STORAGE_TOOL,
        "format",
        "-t",
        _cluster_id(),
        "-c",
        str(paths.server_properties),
        *(sec.scram_arguments(secure) if secure else []),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, umask=PRIVATE)
    if proc.returncode != 0:
        raise DevstackError(f"formatting Kafka storage failed:\n{_tail(proc.stdout + proc.stderr)}")
    if secure:
        paths.scram.write_text(f"{sec.MECHANISM} users: {', '.join(sec.USERS)}\n")


# --- processes -------------------------------------------------------------------------------


def _read_pid(paths: _Paths) -> int | None:
    try:
        return int(paths.pid.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """Return True if ``pid`` runs (reaps it if it is our exited child; zombies count as dead)."""
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and MAIN_CLASS.encode() in cmdline


def _port_open(port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _log_tail(paths: _Paths) -> str:
    parts = []
    for file in (paths.out, paths.log):
        if file.exists():
            parts.append(f"--- {file} (tail) ---\n{_tail(file.read_text(errors='replace'))}")
    return "\n".join(parts) or "(no log written)"


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (serialises up/down and jar fetches across processes)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def plaintext(settings: Settings) -> Settings:
    """Return ``settings`` without Kafka security: the devstack's own PLAINTEXT listener."""
    return settings.model_copy(
        update={
            "kafka_security_protocol": "PLAINTEXT",
            "kafka_sasl_username": None,
            "kafka_sasl_password": None,
            "kafka_sasl_password_file": None,
            "kafka_ssl_cafile": None,
            "kafka_ssl_certfile": None,
            "kafka_ssl_keyfile": None,
        }
    )


async def _metadata_ok(bootstrap: str, settings: Settings, timeout_s: float = 5.0) -> bool:
    """Return True if a real Kafka metadata request lists at least one broker (PLAINTEXT)."""
    admin = kafka_io.admin(bootstrap, plaintext(settings), request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return bool(cluster.get("brokers"))
    except Exception:  # any failure simply means "not ready"
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def _answers(settings: Settings) -> bool:
    """Return True if a Kafka broker answers metadata requests on the devstack port."""
    return _port_open(settings.kafka_port) and _run(_metadata_ok(_bootstrap(settings), settings))


def _bootstrap(settings: Settings) -> str:
    return f"127.0.0.1:{settings.kafka_port}"


def _launch(settings: Settings, paths: _Paths, libs: Path) -> int:
    """Start the broker detached (own session, reparented away from us) and return its pid."""
    cmd = [*_jvm_args(settings, paths, libs), MAIN_CLASS, str(paths.server_properties)]
    # `sh` backgrounds the JVM and exits at once, so the broker is never our zombie child.
    script = 'out="$1"; shift; "$@" </dev/null >"$out" 2>&1 & echo $!'
    proc = subprocess.run(
        ["sh", "-c", script, "sh", str(paths.out), *cmd],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
        umask=PRIVATE,  # segment files, logs and metadata: owner only (they hold locations)
    )
    return int(proc.stdout.strip())


def _wait_ready(settings: Settings, paths: _Paths, pid: int | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid is not None and not _alive(pid):
            raise DevstackError(f"Kafka (pid {pid}) exited during startup\n{_log_tail(paths)}")
        if _answers(settings):
            return
        time.sleep(0.5)
    raise DevstackError(
        f"Kafka did not answer on {_bootstrap(settings)} within {timeout_s:.0f} s "
        f"(pid {pid}); see {paths.log}\n{_log_tail(paths)}"
    )


# --- public API ------------------------------------------------------------------------------


def up(settings: Settings, timeout_s: float = 90.0, *, secure: bool = False) -> BrokerInfo:
    """Start the local broker unless one already answers; wait until it serves metadata.

    ``secure``: also a SASL_SSL listener on ``kafka_secure_port`` with SCRAM users and ACLs
    (:mod:`em_service.devstack.secure`); the storage must be formatted in that mode.
    """
    paths = _Paths.of(settings)
    bootstrap = _bootstrap(settings)
    secure_bootstrap = f"127.0.0.1:{settings.kafka_secure_port}" if secure else None
    with _locked(paths.lock):
        pid = _read_pid(paths)
        if pid is not None and _alive(pid):
            _wait_ready(settings, paths, pid, timeout_s)
            running = _read_version(paths)
            note = f"reused the devstack broker (pid {pid})"
            if running != settings.kafka_version:
                note += f"; it runs Kafka {running}, not {settings.kafka_version}: down, then up"
            mode = _read_mode(paths)
            if mode != ("secure" if secure else "plaintext"):
                note += f"; it runs in {mode} mode: down, then up" + (" --secure" if secure else "")
                secure_bootstrap = None
            elif secure:  # the same rules again (for this EM_APP_ID and these topic names)
                try:
                    _run(_create_acls(settings, bootstrap))
                except sec.SecureSetupError as exc:
                    raise DevstackError(str(exc)) from None
            return BrokerInfo(
                bootstrap=bootstrap,
                answering=True,
                pid=pid,
                version=running,
                started=False,
                managed=True,
                log_file=paths.log,
                note=note,
                secure_bootstrap=secure_bootstrap,
                secure_dir=paths.root / "secure" if secure_bootstrap else None,
            )
        paths.pid.unlink(missing_ok=True)
        if _answers(settings):
            return BrokerInfo(
                bootstrap=bootstrap,
                answering=True,
                pid=None,
                version=None,
                started=False,
                managed=False,
                log_file=paths.log,
                note=f"reused a broker already answering on {bootstrap} (not started by devstack)",
            )
        ports = [settings.kafka_port, settings.kafka_controller_port]
        if secure:
            ports.append(settings.kafka_secure_port)
        if any(_port_open(port) for port in ports):
            raise DevstackError(
                f"one of the ports {', '.join(map(str, ports))} is taken by something that is "
                "not a Kafka broker"
            )
        libs = fetch_jars(settings)
        paths.data.mkdir(mode=0o700, parents=True, exist_ok=True)
        paths.data.chmod(0o700)
        files = None
        if secure:
            try:
                files = sec.prepare(paths.root, secure_bootstrap or "")
            except sec.SecureSetupError as exc:
                raise DevstackError(str(exc)) from None
        paths.server_properties.write_text(server_properties(settings, paths.data, files))
        paths.log4j.write_text(log4j_properties(paths.log))
        _format_storage(settings, paths, libs, files)
        pid = _launch(settings, paths, libs)
        paths.pid.write_text(f"{pid}\n")
        paths.version.write_text(f"{settings.kafka_version}\n")
        paths.mode.write_text("secure\n" if secure else "plaintext\n")
        try:
            _wait_ready(settings, paths, pid, timeout_s)
            if files:
                _run(_create_acls(settings, bootstrap))
        except (DevstackError, sec.SecureSetupError) as exc:
            _stop(paths, pid, timeout_s=10.0)
            raise DevstackError(str(exc)) from None
        return BrokerInfo(
            bootstrap=bootstrap,
            answering=True,
            pid=pid,
            version=settings.kafka_version,
            started=True,
            managed=True,
            log_file=paths.log,
            note=f"started Kafka {settings.kafka_version} (pid {pid})"
            + (f", SASL_SSL on {secure_bootstrap}" if secure else ""),
            secure_bootstrap=secure_bootstrap,
            secure_dir=files.dir if files else None,
        )


async def _create_acls(settings: Settings, bootstrap: str) -> None:
    """Create the service ACLs through the PLAINTEXT listener (its user is a super user)."""
    admin = kafka_io.admin(bootstrap, plaintext(settings))
    await admin.start()
    try:
        await sec.create_acls(admin, sec.service_acls(settings))
    finally:
        await admin.close()


def _read_mode(paths: _Paths) -> str:
    try:
        return paths.mode.read_text().strip() or "plaintext"
    except OSError:
        return "plaintext"


def down(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Stop the devstack broker of this state dir; return True if one was running."""
    paths = _Paths.of(settings)
    with _locked(paths.lock):
        pid = _read_pid(paths)
        if pid is None or not _alive(pid):
            paths.pid.unlink(missing_ok=True)
            return False
        _stop(paths, pid, timeout_s)
        return True


def _stop(paths: _Paths, pid: int, timeout_s: float) -> None:
    """SIGTERM ``pid``, wait up to ``timeout_s``, then SIGKILL; remove the pid file."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        log.warning("Kafka (pid %d) ignored SIGTERM for %.0f s; killing it", pid, timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    paths.pid.unlink(missing_ok=True)


def _read_version(paths: _Paths) -> str | None:
    try:
        return paths.version.read_text().strip() or None
    except OSError:
        return None


def status(settings: Settings) -> BrokerInfo:
    """Return whether a broker answers on the devstack port, and our pid/version if it is ours."""
    paths = _Paths.of(settings)
    pid = _read_pid(paths)
    if pid is not None and not _alive(pid):
        pid = None
    answering = _answers(settings)
    if pid is not None:
        note = f"devstack broker pid {pid}" + ("" if answering else " (not answering yet)")
    else:
        note = "a broker not started by devstack" if answering else "no broker"
    version = _read_version(paths) if pid is not None else None
    if pid is not None and _read_mode(paths) == "secure":
        note += f"; SASL_SSL on 127.0.0.1:{settings.kafka_secure_port}"
    return BrokerInfo(
        bootstrap=_bootstrap(settings),
        answering=answering,
        pid=pid,
        version=version,
        started=False,
        managed=pid is not None,
        log_file=paths.log,
        note=note,
    )


def service_topics(settings: Settings) -> list[NewTopic]:
    """Return the topics the service needs, with their cleanup policies."""
    parts = settings.topic_partitions
    # Every topic takes the batches the producers may send (EM_KAFKA_MAX_MESSAGE_BYTES), whatever
    # the broker's default: a larger reading is refused when sent, a smaller one reaches the worker.
    size = {"max.message.bytes": str(settings.kafka_max_message_bytes)}
    plain = (settings.topic_readings, settings.topic_alerts, settings.topic_dlq)
    topics = [NewTopic(name, parts, 1, topic_configs=size) for name in plain]
    # Workers read every open scene from the start of the scenes topic: keep the newest version
    # of each scene (key = scene_id) for as long as a scene can stay open, plus a day.
    open_ms = int((get_scene_settings().open_days + 1) * 86_400_000)
    scenes = {**size, "cleanup.policy": "compact,delete", "retention.ms": str(open_ms)}
    topics.append(NewTopic(settings.topic_scenes, parts, 1, topic_configs=scenes))
    # Victims' fixes and their dead letters: the shortest retention that lets a restarted worker
    # rebuild victims' recent positions (its memory keeps no more); never archived. Segments
    # roll four times per retention period so that old fixes are deleted on time.
    retention_ms = int(settings.retention_victim_s * 1000)
    victims = {
        **size,
        "retention.ms": str(retention_ms),
        "segment.ms": str(max(60_000, retention_ms // 4)),
    }
    for name in (settings.topic_victim_readings, settings.topic_victim_dlq):
        topics.append(NewTopic(name, parts, 1, topic_configs=victims))
    compact = {**size, "cleanup.policy": "compact"}
    topics.append(NewTopic(settings.topic_conditions, parts, 1, topic_configs=compact))
    # The worker's device states: partition p holds the states of readings partition p.
    # Short segments so compaction keeps up (it never touches the active segment): a worker
    # taking a partition over reads little more than one state per device.
    changelog = {**compact, "segment.ms": str(3600_000), "min.cleanable.dirty.ratio": "0.1"}
    topics.append(NewTopic(settings.state_changelog_topic(), parts, 1, topic_configs=changelog))
    return topics


async def ensure_topics_async(
    settings: Settings, bootstrap: str | None = None, *, only: Iterable[str] | None = None
) -> list[str]:
    """Create the service topics that are missing (of those named in ``only``, if given);
    return the names created.

    A service passes ``only`` = the topics it uses: under the ACLs of SECURITY.md it can neither
    see nor create the others, which would look missing and fail to be created.
    """
    wanted = None if only is None else set(only)
    admin = kafka_io.admin(bootstrap or settings.kafka_bootstrap, settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            t
            for t in service_topics(settings)
            if t.name not in existing and (wanted is None or t.name in wanted)
        ]
        if not missing:
            return []
        response = await admin.create_topics(missing)
        created, errors = [], []
        for topic, code, *rest in response.topic_errors:
            if code == 0:
                created.append(topic)
            elif code != TOPIC_ALREADY_EXISTS:  # created meanwhile by someone else: fine
                errors.append(f"{topic}: error {code} {rest[0] if rest else ''}".strip())
        if errors:
            raise DevstackError("creating topics failed: " + "; ".join(errors))
        return created
    finally:
        await admin.close()


def ensure_topics(settings: Settings, bootstrap: str | None = None) -> list[str]:
    """Create the missing service topics on ``bootstrap`` (default settings.kafka_bootstrap)."""
    return _run(ensure_topics_async(settings, bootstrap))

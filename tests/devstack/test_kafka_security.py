"""A real broker in secure mode (``devstack up --secure``): SASL_SSL with SCRAM-SHA-512 users,
a private CA and the per-service ACLs of SECURITY.md. One broker for the module, on its own
ports and state dir (the shared test broker is not touched), stopped at the end. The real worker,
archiver, API and an operator's CLI command run against it, each as its own SCRAM user."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from pydantic import SecretStr

from em_service import kafka_io
from em_service.archiver import topics as archiver_topics
from em_service.contracts import Conditions
from em_service.contracts.dlq import DeadLetter
from em_service.devstack import kafka as devstack
from em_service.devstack import secure as sec
from em_service.devstack.secure import USERS, SecureFiles, service_acls
from em_service.settings import Settings, get_settings
from em_service.store import Store, migrate, tokens
from tests.helpers import unique_name
from tests.service_env import wait_until

#: How long a refused client may take to fail (a hang would be a failure too).
REFUSED_WITHIN_S = 20.0
TOPIC_AUTHORIZATION_FAILED = 29

pytestmark = pytest.mark.kafka


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass(frozen=True)
class SecureBroker:
    settings: Settings  # plaintext settings of the broker (ports, state dir, topic names)
    bootstrap: str  # the SASL_SSL listener
    files: SecureFiles
    started_s: float

    def user(self, name: str) -> Settings:
        """Settings of a client logging in as ``name`` over SASL_SSL, trusting the devstack CA."""
        return self.files.client_settings(self.settings, name, self.bootstrap)


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    port, cport, sport = _free_ports(3)
    settings = devstack.plaintext(get_settings()).model_copy(
        update={
            "state_dir": tmp_path_factory.mktemp("secure-devstack"),
            "kafka_port": port,
            "kafka_controller_port": cport,
            "kafka_secure_port": sport,
            "kafka_heap": "-Xmx384m -Xms64m",
        }
    )
    began = time.monotonic()
    info = devstack.up(settings, secure=True)
    try:
        assert info.started and info.secure_bootstrap == f"127.0.0.1:{sport}"
        devstack.ensure_topics(settings, info.bootstrap)
        assert info.secure_dir is not None
        files = SecureFiles(info.secure_dir)
        yield SecureBroker(settings, info.secure_bootstrap, files, time.monotonic() - began)
    finally:
        devstack.down(settings)


def test_secrets_are_generated_private_and_outside_the_repo(secure_broker: SecureBroker) -> None:
    files = secure_broker.files
    repo = Path(__file__).resolve().parents[2]
    assert not files.dir.is_relative_to(repo)
    assert files.dir.stat().st_mode & 0o777 == 0o700
    private = [files.ca_key, files.keystore]
    private += [files.password_file(u) for u in USERS] + [files.env_file(u) for u in USERS]
    for path in private:
        assert path.stat().st_mode & 0o777 == 0o600, path
    passwords = {files.password(u) for u in USERS}
    assert len(passwords) == len(USERS) and all(len(p) >= 24 for p in passwords)
    print(f"secure devstack start: {secure_broker.started_s:.1f} s")


async def test_service_users_with_the_ca_produce_and_consume(secure_broker: SecureBroker) -> None:
    s = secure_broker.settings
    ops, worker, archiver = (secure_broker.user(u) for u in ("ops", "worker", "archiver"))
    value = unique_name("reading").encode()
    sent = await kafka_io.send_all(
        secure_broker.bootstrap, s.topic_readings, [(b"dev", value)], settings=ops
    )
    assert sent == 1

    # The worker reads readings in its group and writes alerts in its transactions.
    reader = kafka_io.consumer(
        s.topic_readings,
        bootstrap=secure_broker.bootstrap,
        group_id=s.app_id,
        auto_offset_reset="earliest",
        settings=worker,
    )
    writer = kafka_io.producer(worker, transactional_id=f"{s.app_id}-tracking-0")
    await reader.start()
    await writer.start()
    try:
        seen: list[bytes] = []
        async with asyncio.timeout(30):
            while value not in seen:
                batch = await reader.getmany(timeout_ms=500)
                seen += [m.value for msgs in batch.values() for m in msgs]
        await reader.commit()
        async with writer.transaction():
            await writer.send(s.topic_alerts, b"alert-" + value, key=b"off")
    finally:
        await reader.stop()
        await writer.stop()

    # The archiver reads the committed alert in its own group.
    follower = kafka_io.consumer(
        s.topic_alerts,
        bootstrap=secure_broker.bootstrap,
        group_id=f"{s.app_id}-archiver",
        auto_offset_reset="earliest",
        settings=archiver,
    )
    await follower.start()
    try:
        alerts: list[bytes] = []
        async with asyncio.timeout(30):
            while b"alert-" + value not in alerts:
                batch = await follower.getmany(timeout_ms=500)
                alerts += [m.value for msgs in batch.values() for m in msgs]
    finally:
        await follower.stop()


async def _refused(settings: Settings, bootstrap: str) -> BaseException:
    """Start a producer with ``settings``; return the error it fails with (within a deadline)."""
    producer = kafka_io.producer(settings, bootstrap=bootstrap, request_timeout_ms=5000)
    try:
        async with asyncio.timeout(REFUSED_WITHIN_S):
            await producer.start()
            await producer.send_and_wait(settings.topic_readings, b"must not arrive")
    except (KafkaError, OSError) as exc:
        return exc
    finally:
        await producer.stop()
    raise AssertionError("the broker accepted a client it should refuse")


async def test_clients_without_valid_credentials_are_refused(secure_broker: SecureBroker) -> None:
    b, api = secure_broker.bootstrap, secure_broker.user("api")
    s = secure_broker.settings
    mark = await kafka_io.end_offsets(b, s.topic_readings, secure_broker.user("ops"))

    plaintext = s  # no TLS, no login, to the SASL_SSL port
    assert isinstance(await _refused(plaintext, b), KafkaConnectionError)
    wrong = api.model_copy(
        update={"kafka_sasl_password_file": None, "kafka_sasl_password": SecretStr("wrong")}
    )
    assert isinstance(await _refused(wrong, b), KafkaConnectionError)
    untrusted = api.model_copy(update={"kafka_ssl_cafile": None})  # system CAs only
    assert isinstance(await _refused(untrusted, b), KafkaConnectionError)
    no_tls = api.model_copy(update={"kafka_security_protocol": "SASL_PLAINTEXT"})
    assert isinstance(await _refused(no_tls, b), KafkaConnectionError)

    # Nothing of theirs arrived.
    after = await kafka_io.end_offsets(b, s.topic_readings, secure_broker.user("ops"))
    assert after == mark


async def test_acls_keep_each_service_to_its_table(secure_broker: SecureBroker) -> None:
    s, b = secure_broker.settings, secure_broker.bootstrap
    api = secure_broker.user("api")

    # The API may publish conditions, but neither read readings nor write alerts: the broker
    # does not even describe the readings topic to it.
    assert await kafka_io.send_all(b, s.topic_conditions, [(b"off", b"{}")], settings=api) == 1
    admin = kafka_io.admin(b, api)
    await admin.start()
    try:
        described = await admin.describe_topics([s.topic_readings, s.topic_conditions])
    finally:
        await admin.close()
    codes = {d["topic"]: d["error_code"] for d in described}
    assert codes == {s.topic_readings: TOPIC_AUTHORIZATION_FAILED, s.topic_conditions: 0}
    assert await kafka_io.partitions(b, s.topic_readings, api) == []
    with pytest.raises(TopicAuthorizationFailedError):
        async with asyncio.timeout(REFUSED_WITHIN_S):
            await kafka_io.send_all(b, s.topic_alerts, [(b"off", b"forged alert")], settings=api)

    worker = secure_broker.user("worker")
    # The worker may not read alerts in its own group …
    reader = kafka_io.consumer(s.topic_alerts, bootstrap=b, group_id=s.app_id, settings=worker)
    await reader.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            async with asyncio.timeout(REFUSED_WITHIN_S):
                while True:
                    await reader.getmany(timeout_ms=500)
    finally:
        await reader.stop()
    # … nor join another service's group;
    intruder = kafka_io.consumer(
        s.topic_readings, bootstrap=b, group_id=f"{s.app_id}-archiver", settings=worker
    )
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            async with asyncio.timeout(REFUSED_WITHIN_S):
                await intruder.start()
    finally:
        await intruder.stop()
    # and the archiver may not take the worker's transactional ids (to fence it).
    zombie = kafka_io.producer(
        secure_broker.user("archiver"), transactional_id=f"{s.app_id}-tracking-0"
    )
    try:
        with pytest.raises(TransactionalIdAuthorizationFailed):
            async with asyncio.timeout(REFUSED_WITHIN_S):
                await zombie.start()
    finally:
        await zombie.stop()


def test_the_acl_table_is_the_one_documented(secure_broker: SecureBroker) -> None:
    security = (Path(__file__).resolve().parents[2] / "SECURITY.md").read_text()
    for acl in service_acls(Settings()):
        assert acl.command() in security, acl.command()


def _service_env(broker: SecureBroker, user: str, state_dir: Path) -> dict[str, str]:
    """The environment of a service process logging in as ``user`` (no ``EM_*`` of the shared
    test broker), with its own state dir (its SQLite database) and metrics ports."""
    metrics, archiver_metrics, api = _free_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EM_")}
    return (
        env
        | broker.files.client_env(user, broker.bootstrap)
        | {
            "EM_STATE_DIR": str(state_dir),
            "EM_WORKER_METRICS_PORT": str(metrics),
            "EM_ARCHIVER_METRICS_PORT": str(archiver_metrics),
            "EM_API_PORT": str(api),
            "EM_CACHE_DIR": str(broker.settings.cache_dir),
        }
    )


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``em-service *args`` in its own process group, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "em_service.cli", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started by :func:`_start` (its group, by its pid) and wait for it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _alive(proc: subprocess.Popen, log: Path) -> bool:
    """True while ``proc`` runs; fail at once with its log if it exited."""
    assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
    return True


async def test_the_real_worker_runs_over_sasl_ssl(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    s, b = secure_broker.settings, secure_broker.bootstrap
    log = tmp_path / "worker.log"
    proc = _start(["worker"], _service_env(secure_broker, "worker", tmp_path), log)
    try:
        ops = secure_broker.user("ops")
        mark = await kafka_io.end_offsets(b, s.topic_dlq, ops)
        poison = unique_name("not json").encode()
        await kafka_io.send_all(b, s.topic_readings, [(b"dev-sec", poison)], settings=ops)
        letters = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not letters and _alive(proc, log):
            records = await kafka_io.read_since(
                b, s.topic_dlq, mark, want=1, timeout_s=2, settings=ops
            )
            letters = [msgspec.json.decode(r.value, type=DeadLetter) for r in records]
        assert letters, log.read_text(errors="replace")[-3000:]
        assert letters[0].reason == "invalid_json" and letters[0].key == "dev-sec"
    finally:
        _stop(proc)


async def test_services_ensure_only_the_topics_they_use(secure_broker: SecureBroker) -> None:
    """Under the ACLs a user sees only its own topics: the others look missing and may not be
    created, so the archiver and the scene commands ensure only theirs."""
    s, b = secure_broker.settings, secure_broker.bootstrap
    archiver, ops = secure_broker.user("archiver"), secure_broker.user("ops")
    assert await devstack.ensure_topics_async(archiver, b, only=archiver_topics(archiver)) == []
    assert await devstack.ensure_topics_async(ops, b, only=[s.topic_scenes]) == []
    with pytest.raises(devstack.DevstackError, match="error 29 Authorization failed"):
        await devstack.ensure_topics_async(ops, b)  # all of them: alerts, changelog unseen


def _stored_fix(db: Path, device_id: str) -> tuple[float, float] | None:
    """The (lat, lon) of ``device_id``'s fix in the SQLite database ``db`` (None: not yet)."""
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        try:
            row = conn.execute(
                "SELECT lat, lon FROM fixes WHERE device_id = ?", (device_id,)
            ).fetchone()
        except sqlite3.OperationalError:  # not migrated yet, or locked for a moment
            return None
    return row


def test_the_real_archiver_stores_a_fix_over_sasl_ssl(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    s, b = secure_broker.settings, secure_broker.bootstrap
    env = _service_env(secure_broker, "archiver", tmp_path)
    # Event time: the fix below is judged by its own clock, not the day the test runs.
    env |= {"EM_RULE_CLOCK": "event", "EM_MAX_PAST_AGE_S": str(20 * 365 * 86400)}
    device = unique_name("tag-sec")
    fix = {
        "type": "gps",
        "device_id": device,
        "ts": "2026-11-21T10:00:00Z",
        "lat": 51.455,
        "lon": -0.973,
        "accuracy_m": 5.0,
        "seq": 1,
    }
    ops = secure_broker.user("ops")
    log = tmp_path / "archiver.log"
    proc = _start(["archiver"], env, log)
    try:
        asyncio.run(
            kafka_io.send_all(
                b, s.topic_readings, [(device.encode(), json.dumps(fix).encode())], settings=ops
            )
        )
        stored = wait_until(
            lambda: _alive(proc, log) and _stored_fix(tmp_path / "em.db", device),
            60,
            what="the archiver to store the fix",
            fatal=(AssertionError,),
        )
        assert stored == (51.455, -0.973)
    finally:
        _stop(proc)


def test_the_real_api_publishes_conditions_over_sasl_ssl(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    s, b = secure_broker.settings, secure_broker.bootstrap
    store = Store(f"sqlite:///{tmp_path / 'em.db'}")
    migrate.upgrade(store)
    with store.write() as session:
        token = tokens.create_token(session, name="admin-sec", role="admin")
    store.dispose()
    env = _service_env(secure_broker, "api", tmp_path)
    base = f"http://127.0.0.1:{env['EM_API_PORT']}"
    worker = secure_broker.user("worker")  # may read conditions (the API may not)
    log = tmp_path / "api.log"
    proc = _start(["api"], env, log)
    try:
        wait_until(
            lambda: (
                _alive(proc, log) and httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            ),
            30,
            what="the API",
            fatal=(AssertionError,),
        )
        mark = asyncio.run(kafka_io.end_offsets(b, s.topic_conditions, worker))
        offender = unique_name("off-sec")
        body = {"offender_id": offender, "device_ids": [unique_name("tag")], "zones": []}
        r = httpx.put(
            f"{base}/api/v1/offenders/{offender}/conditions",
            headers={"Authorization": f"Bearer {token}"},
            json=body,
            timeout=30,
        )
        assert r.status_code == 200, r.text + log.read_text(errors="replace")[-3000:]
        assert r.json()["topic"] == s.topic_conditions
        records = asyncio.run(
            kafka_io.read_since(
                b, s.topic_conditions, mark or None, want=1, timeout_s=20, settings=worker
            )
        )
        published = [msgspec.json.decode(rec.value, type=Conditions) for rec in records]
        assert [(rec.key, c.offender_id) for rec, c in zip(records, published, strict=True)] == [
            (offender.encode(), offender)
        ]
    finally:
        _stop(proc)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "em_service.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_dlq_cli_reads_over_sasl_ssl_and_refuses_clearly_without_a_login(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    ops = _service_env(secure_broker, "ops", tmp_path)
    shown = _cli(["dlq", "show"], ops)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("reason") and "not re-driven" in shown.stdout

    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    no_login = {
        k: v
        for k, v in ops.items()
        if k not in ("EM_KAFKA_SECURITY_PROTOCOL", "EM_KAFKA_SASL_MECHANISM")
        and not k.startswith(("EM_KAFKA_SASL_", "EM_KAFKA_SSL_"))
    }
    for env, why in (
        (no_login, "KafkaConnectionError"),
        (ops | {"EM_KAFKA_SASL_PASSWORD_FILE": str(wrong)}, "SaslAuthenticationFailed"),
    ):
        refused = _cli(["dlq", "show"], env)
        assert why in refused.stderr, refused.stderr
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "Traceback" not in refused.stderr, refused.stderr
        last = refused.stderr.strip().splitlines()[-1]
        assert last.startswith(f"em-service: cannot use Kafka at {secure_broker.bootstrap}:"), (
            refused.stderr
        )
        assert "not-the-password" not in refused.stderr + refused.stdout


def test_secure_properties_add_a_sasl_ssl_listener_and_keep_the_plain_one(tmp_path: Path) -> None:
    settings = Settings(kafka_port=1234, kafka_controller_port=1235, kafka_secure_port=1236)
    files = SecureFiles(tmp_path / "secure")
    lines = set(devstack.server_properties(settings, tmp_path, files).splitlines())
    assert (
        "listeners=PLAINTEXT://127.0.0.1:1234,SASL_SSL://127.0.0.1:1236,CONTROLLER://127.0.0.1:1235"
        in lines
    )
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in lines
    assert "allow.everyone.if.no.acl.found=false" in lines
    assert f"ssl.keystore.location={files.keystore}" in lines
    plain = devstack.server_properties(settings, tmp_path)
    assert "SASL" not in plain and "authorizer" not in plain  # the default devstack is unchanged


def test_secure_mode_refuses_storage_formatted_without_users(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    paths = devstack._Paths.of(settings)
    paths.data.mkdir(parents=True)
    (paths.data / "meta.properties").write_text("formatted in plaintext mode\n")
    files = SecureFiles(paths.root / "secure")
    with pytest.raises(devstack.DevstackError, match="formatted without --secure"):
        devstack._format_storage(settings, paths, tmp_path, files)


def test_up_again_reuses_the_secure_broker(secure_broker: SecureBroker) -> None:
    again = devstack.up(secure_broker.settings, secure=True)
    assert not again.started and again.secure_bootstrap == secure_broker.bootstrap
    assert "SASL_SSL" in devstack.status(secure_broker.settings).note
    plain = devstack.up(secure_broker.settings)  # asked for plain: told how it runs
    assert plain.secure_bootstrap is None and "secure mode" in plain.note


def test_scram_users_are_formatted_without_their_passwords(secure_broker: SecureBroker) -> None:
    files = secure_broker.files
    args = " ".join(sec.scram_arguments(files))  # what the storage tool's command line shows
    for user in USERS:
        assert f"name={user}," in args and files.password(user) not in args

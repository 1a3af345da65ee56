"""Secure mode of the devstack broker (``em-service devstack up --secure``).

Beside its PLAINTEXT listener (local, for the devstack's own probes and topic creation) the
broker gets a SASL_SSL listener on ``EM_KAFKA_SECURE_PORT``: TLS with a certificate of a
private CA, SCRAM-SHA-512 logins, and the StandardAuthorizer with the per-service ACLs of
:func:`service_acls` (SECURITY.md "Kafka authentication and ACLs"). Everything secret is
generated under ``<state_dir>/kafka/secure/`` (keys and passwords 0600, never in the repo):
``ca.pem`` (what clients trust), one ``<user>.password`` and one ``<user>.env`` (the
``EM_KAFKA_*`` settings of that user) per user of :data:`USERS`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest

from em_service.settings import Settings

#: SCRAM users: ``admin`` (super user: ACLs, topics), one per service, ``ops`` for the CLI.
USERS = ("admin", "worker", "archiver", "api", "ops")
MECHANISM = "SCRAM-SHA-512"
ITERATIONS = 8192  # Kafka accepts 4096 to 16384

# Kafka protocol codes (org.apache.kafka.common.acl / resource).
TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID = 2, 3, 4, 5
LITERAL, PREFIXED = 3, 4
READ, WRITE, DESCRIBE, DESCRIBE_CONFIGS = 3, 4, 8, 10
ALLOW = 3
_RESOURCE = {
    TOPIC: "topic",
    GROUP: "group",
    CLUSTER: "cluster",
    TRANSACTIONAL_ID: "transactional-id",
}
_OPERATION = {
    READ: "Read",
    WRITE: "Write",
    DESCRIBE: "Describe",
    DESCRIBE_CONFIGS: "DescribeConfigs",
}


class SecureSetupError(RuntimeError):
    """The CA, certificates or passwords could not be made."""


@dataclass(frozen=True)
class Acl:
    """One ALLOW rule: ``User:<user>`` may do ``operation`` on a resource (any host)."""

    user: str
    resource_type: int
    name: str
    operation: int
    pattern: int = LITERAL

    def command(self) -> str:
        """Return the ``kafka-acls.sh`` arguments that create this rule."""
        kind = _RESOURCE[self.resource_type]
        target = "--cluster" if self.resource_type == CLUSTER else f"--{kind} {self.name}"
        prefixed = " --resource-pattern-type prefixed" if self.pattern == PREFIXED else ""
        return (
            f"--add --allow-principal User:{self.user} "
            f"--operation {_OPERATION[self.operation]} {target}{prefixed}"
        )


def service_acls(settings: Settings) -> list[Acl]:
    """Return the least ACLs each service needs, from its real topics, groups and
    transactional ids (the table of SECURITY.md; ``admin`` is a super user)."""
    app = settings.app_id
    readings, alerts, dlq = settings.topic_readings, settings.topic_alerts, settings.topic_dlq
    scenes, conditions = settings.topic_scenes, settings.topic_conditions
    changelog = settings.state_changelog_topic()
    victims, victim_dlq = settings.topic_victim_readings, settings.topic_victim_dlq
    acls: list[Acl] = []

    def grant(user: str, kind: int, names: tuple[str, ...], *ops: int, pattern: int = LITERAL):
        acls.extend(Acl(user, kind, n, op, pattern) for n in names for op in ops)

    # Worker: readings in (group <app>), conditions, scenes and victims' fixes followed from the
    # start (no group), device states restored from and written to the changelog; alerts, dead
    # letters and states written in transactions <app>-tracking-<partition>; bad victim records
    # dead-lettered once (group <app>-victim-letters) to the victims' own dead-letter topic.
    grant("worker", TOPIC, (readings, conditions, scenes, changelog, victims), READ)
    grant("worker", TOPIC, (alerts, dlq, changelog, victim_dlq), WRITE, DESCRIBE_CONFIGS)
    grant("worker", GROUP, (app, f"{app}-victim-letters"), READ)
    grant("worker", TRANSACTIONAL_ID, (f"{app}-tracking-",), WRITE, pattern=PREFIXED)
    # Archiver (with the retrospective scene search inside): readings, alerts and conditions
    # into the store (group <app>-archiver); scenes and alerts (group <app>-scenes); scene
    # alerts and dead letters written (idempotent, not transactional).
    grant("archiver", TOPIC, (readings, alerts, conditions, scenes), READ)
    grant("archiver", TOPIC, (alerts, dlq), WRITE)
    grant("archiver", GROUP, (f"{app}-archiver", f"{app}-scenes"), READ)
    # API: publishes conditions and scenes (and crime-batch scenes); reads nothing from Kafka.
    grant("api", TOPIC, (conditions, scenes), WRITE)
    # Operators' CLI: conditions load, scenes import, simulate, dlq show|replay [--victims]
    # (transactional, group and transactional id <app>-dlq-replay-[victims-]<reason>). Reading
    # the victims' dead letters gives ops their bytes (positions); the CLI never prints them.
    grant("ops", TOPIC, (conditions, scenes, readings, victims), WRITE)
    grant("ops", TOPIC, (dlq, victim_dlq), READ)
    grant("ops", GROUP, (f"{app}-dlq-replay-",), READ, pattern=PREFIXED)
    grant("ops", TRANSACTIONAL_ID, (f"{app}-dlq-replay-",), WRITE, pattern=PREFIXED)
    return acls


@dataclass(frozen=True)
class SecureFiles:
    """The secure-mode files under ``<state_dir>/kafka/secure/``."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def keystore(self) -> Path:
        """The broker's private key and certificate chain (a PEM keystore)."""
        return self.dir / "broker-keystore.pem"

    def password_file(self, user: str) -> Path:
        return self.dir / f"{user}.password"

    def password(self, user: str) -> str:
        return self.password_file(user).read_text().strip()

    def env_file(self, user: str) -> Path:
        return self.dir / f"{user}.env"

    def client_env(self, user: str, bootstrap: str) -> dict[str, str]:
        """Return the ``EM_KAFKA_*`` environment of a client logging in as ``user``."""
        return {
            "EM_KAFKA_BOOTSTRAP": bootstrap,
            "EM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "EM_KAFKA_SASL_MECHANISM": MECHANISM,
            "EM_KAFKA_SASL_USERNAME": user,
            "EM_KAFKA_SASL_PASSWORD_FILE": str(self.password_file(user)),
            "EM_KAFKA_SSL_CAFILE": str(self.ca),
        }

    def client_settings(self, settings: Settings, user: str, bootstrap: str) -> Settings:
        """Return ``settings`` connecting as ``user`` to the SASL_SSL listener ``bootstrap``."""
        return settings.model_copy(
            update={
                "kafka_bootstrap": bootstrap,
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": MECHANISM,
                "kafka_sasl_username": user,
                "kafka_sasl_password": None,
                "kafka_sasl_password_file": self.password_file(user),
                "kafka_ssl_cafile": self.ca,
            }
        )


def prepare(root: Path, bootstrap: str) -> SecureFiles:
    """Create (once) the CA, the broker's keystore and every user's password and env file."""
    files = SecureFiles(root / "secure")
    files.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    files.dir.chmod(0o700)
    if not (files.ca.exists() and files.keystore.exists()):
        _certificates(files)
    for user in USERS:
        path = files.password_file(user)
        if not path.exists():
            _private_write(path, secrets.token_urlsafe(24) + "\n")
        env = files.client_env(user, bootstrap)
        _private_write(files.env_file(user), "".join(f"{k}={v}\n" for k, v in env.items()))
    return files


def scram_arguments(files: SecureFiles) -> list[str]:
    """Return the ``kafka-storage format`` arguments that create every SCRAM user: salted
    passwords (RFC 5802 ``Hi``), so that no password shows in the process list."""
    args: list[str] = []
    for user in USERS:
        salt = secrets.token_bytes(32)
        salted = hashlib.pbkdf2_hmac("sha512", files.password(user).encode(), salt, ITERATIONS)
        fields = (
            f'name={user},iterations={ITERATIONS},salt="{base64.b64encode(salt).decode()}",'
            f'saltedpassword="{base64.b64encode(salted).decode()}"'
        )
        args += ["--add-scram", f"{MECHANISM}=[{fields}]"]
    return args


def listener_properties(files: SecureFiles, secure_port: int) -> dict[str, str]:
    """Return the broker properties of the SASL_SSL listener and the authorizer (merged with
    the plaintext ones by the caller)."""
    jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return {
        "sasl.enabled.mechanisms": MECHANISM,
        f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(files.keystore),
        "ssl.client.auth": "none",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # admin: ACLs and topics over SASL_SSL; ANONYMOUS: the local PLAINTEXT and CONTROLLER
        # listeners of this single dev node (a production broker has neither in the open).
        "super.users": "User:admin;User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
    }


async def create_acls(admin: AIOKafkaAdminClient, acls: list[Acl]) -> None:
    """Create ``acls`` (an existing rule is left as it is) through a super user's ``admin``.

    aiokafka has no public call for this: the CreateAcls request goes through its client.
    """
    for acl in acls:
        request = CreateAclsRequest(
            acl.resource_type, acl.name, acl.pattern, f"User:{acl.user}", "*", acl.operation, ALLOW
        )
        response = await admin._send_request(request)
        for code, message in response.creation_responses:
            if code:
                raise SecureSetupError(f"creating ACL {acl.command()} failed: {code} {message}")


def _private_write(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SecureSetupError("`openssl` is not on PATH; secure mode needs it for certificates")
    proc = subprocess.run([openssl, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SecureSetupError(f"openssl {args[0]} failed: {proc.stderr.strip()[-800:]}")


def _certificates(files: SecureFiles) -> None:
    """Make a private CA (10 years) and a broker certificate for localhost and 127.0.0.1."""
    d = files.dir
    key, csr, crt, ext = d / "broker.key", d / "broker.csr", d / "broker.crt", d / "broker.ext"
    for path in (files.ca_key, key):
        path.unlink(missing_ok=True)
        path.touch(mode=0o600)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
        "-keyout", str(files.ca_key), "-out", str(files.ca),
        "-subj", "/CN=em-service devstack CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=localhost",
    )  # fmt: skip
    ext.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(files.ca), "-CAkey", str(files.ca_key),
        "-CAcreateserial", "-days", "825", "-out", str(crt), "-extfile", str(ext),
    )  # fmt: skip
    _private_write(files.keystore, key.read_text() + crt.read_text() + files.ca.read_text())
    for path in (key, csr, crt, ext, d / "ca.srl"):
        path.unlink(missing_ok=True)

"""Kafka security settings: a combination that would connect other than meant is refused when
the settings are read, and every command stops at start with exit 2 and a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from em_service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs EM_KAFKA_SASL_USERNAME"),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "worker"},
            "exactly one of EM_KAFKA_SASL_PASSWORD and EM_KAFKA_SASL_PASSWORD_FILE",
        ),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_username": "worker",
                "kafka_sasl_password": "p",
                "kafka_sasl_password_file": "/p",
            },
            "exactly one of",
        ),
        ({"kafka_sasl_username": "worker", "kafka_sasl_password": "p"}, "would not send them"),
        ({"kafka_security_protocol": "SSL", "kafka_sasl_username": "w"}, "would not send them"),
        ({"kafka_ssl_cafile": "/ca.pem"}, "uses no TLS"),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_username": "w",
                "kafka_sasl_password": "p",
            },
            "in clear",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/c.pem"},
            "EM_KAFKA_SSL_CERTFILE and EM_KAFKA_SSL_KEYFILE go together",
        ),
    ],
)
def test_mis_set_combinations_are_refused(env: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**env)


def test_valid_combinations_are_accepted() -> None:
    Settings(kafka_security_protocol="SSL", kafka_ssl_cafile="/ca.pem")
    sasl = Settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="w", kafka_sasl_password="pw-42"
    )
    assert "pw-42" not in repr(sasl)  # the password is a secret


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EM_")}
    return subprocess.run(
        [sys.executable, "-m", "em_service.cli", *args],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("worker",), {"EM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs EM_KAFKA_SASL_USERNAME"),
        (
            ("dlq", "show"),
            {"EM_KAFKA_SASL_USERNAME": "ops", "EM_KAFKA_SASL_PASSWORD": "p"},
            "would not send them: use SASL_SSL",
        ),
        (
            ("archiver",),
            {
                "EM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "EM_KAFKA_SASL_USERNAME": "archiver",
                "EM_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/archiver.password",
            },
            "EM_KAFKA_SASL_PASSWORD_FILE /nonexistent/archiver.password: No such file",
        ),
        (
            ("devstack", "topics"),
            {"EM_KAFKA_SECURITY_PROTOCOL": "SSL", "EM_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "EM_KAFKA_SSL_CAFILE /nonexistent/ca.pem: no such file",
        ),
    ],
)
def test_a_mis_set_command_stops_at_start_with_a_clear_message(
    args: tuple[str, ...], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    proc = _run(*args, env={**env, "EM_STATE_DIR": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("em-service: configuration error: ")
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr

"""The demo tells the officer where the console is and which token signs them in."""

from __future__ import annotations

from pathlib import Path

import pytest

from em_service.demo import where_to_look


def test_demo_prints_the_console_url_and_the_officer_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = {"api": "http://127.0.0.1:8000", "worker": "w", "archiver": "a"}
    made = {"demo-officer": "em_officer-token", "demo-admin": "em_admin-token"}
    where_to_look(urls, made, tmp_path, tmp_path / "demo.log")
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8000/console/ (sign in with the officer token)" in out
    assert "officer token em_officer-token" in out

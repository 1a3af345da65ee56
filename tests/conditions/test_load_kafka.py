"""``em-service conditions load`` on the real broker: per-file errors, and only documents the
worker applies are published."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from em_service import kafka_io
from em_service.conditions.registry import ConditionsRegistry
from tests.conditions.cases import REFUSED, VALID_ZONE, doc
from tests.helpers import unique_name

pytestmark = pytest.mark.kafka


def test_load_reports_each_bad_document_and_publishes_only_valid_ones(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = unique_name("conditions")
    (tmp_path / "a.json").write_text(json.dumps(doc("off-a", "tag-a", zones=[VALID_ZONE])))
    (tmp_path / "b.json").write_text(
        json.dumps([doc("off-b", "tag-b"), doc("off-x", "tag-x", zones=REFUSED["bowtie"][0])])
    )
    for i, case in enumerate(("335_km", "outside_crs_area", "hole_outside_shell")):
        (tmp_path / f"c{i}.json").write_text(
            json.dumps(doc(f"off-c{i}", f"tag-c{i}", zones=REFUSED[case][0]))
        )
    env = {
        **os.environ,
        "EM_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "EM_TOPIC_CONDITIONS": topic,
        "EM_STATE_DIR": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "em_service.cli", "conditions", "load", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "2 published, 4 invalid"
    invalid = sorted(line for line in lines if line.startswith("invalid: "))
    expected = [
        ("b.json[1]", "bowtie"),
        ("c0.json[0]", "335_km"),
        ("c1.json[0]", "outside_crs_area"),
        ("c2.json[0]", "hole_outside_shell"),
    ]
    assert len(invalid) == len(expected)
    for line, (where, case) in zip(invalid, expected, strict=True):
        assert line.startswith(f"invalid: {where}: zone-1: ") and REFUSED[case][1] in line
    records = asyncio.run(kafka_io.read_since(kafka_bootstrap, topic, None, want=3, timeout_s=5))
    assert sorted(r.key for r in records) == [b"off-a", b"off-b"]
    registry = ConditionsRegistry()
    for r in records:  # the worker applies every one of them
        registry.apply(r.key.decode(), r.value)
    assert sorted(registry.offenders()) == ["off-a", "off-b"]

"""Evidence export: GeoJSON and CSV with a hash-chained manifest; verification fails on any
one-byte edit."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from em_service.scenes import evidence, retro
from em_service.scenes import store as scene_store
from em_service.scenes.config import SceneSettings
from em_service.store import Store
from tests.scenes.helpers import W0, enrol, readings, scene_msg, stand, walk

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
EXPORTED = datetime(2026, 10, 22, 9, 30, tzinfo=UTC)


def _exports(store: Store) -> dict[str, tuple[bytes, str, int]]:
    before = walk(W0 - 50 * MIN, (200.0, 0.0), (3000.0, 0.0), 60.0, 15)
    enrol(
        store,
        {
            "off-at": readings("tag-at", stand(W0 + 2 * H, 6, 30.0, 0.0)),
            "off-pass": readings("tag-pass", walk(W0 + H, (-1320.0, 30.0), (1080.0, 30.0), 90, 11)),
            "off-away": readings("tag-away", before + stand(W0 - 35 * MIN, 180, 3000, 0)),
        },
    )
    short = scene_msg("sc-ev", start=W0, end=W0 + 20 * MIN + 2 * H)
    retro.run(store, short, SceneSettings(), crs="EPSG:27700", now=EXPORTED)
    out = {}
    with store.read() as s:
        scene = scene_store.get_scene(s, "sc-ev")
        for offender in ("off-at", "off-pass", "off-away"):
            row = scene_store.get_match(s, "sc-ev", offender)
            for fmt in ("geojson", "csv"):
                out[f"{offender}.{fmt}"] = evidence.export(
                    scene, row, fmt=fmt, actor="investigator-1", exported_at=EXPORTED
                )
    return out


@pytest.fixture
def exports(store: Store) -> dict[str, tuple[bytes, str, int]]:
    return _exports(store)


def test_exports_verify_and_carry_utc_and_local_times(exports) -> None:
    for name, (data, head, n) in exports.items():
        result = evidence.verify(data)
        assert result.ok, (name, result.problems)
        assert (result.head, result.records) == (head, n)
    doc = json.loads(exports["off-at.geojson"][0])
    assert doc["type"] == "FeatureCollection"
    assert doc["evidence"]["purpose"] == "CR/sc-ev"
    assert doc["evidence"]["exported_at_local"] == "2026-10-22T10:30:00.000+01:00"
    kinds = [f["properties"]["record"] for f in doc["features"]]
    assert kinds[:2] == ["scene", "match"] and kinds.count("fix") == 7
    scene = doc["features"][0]
    assert scene["geometry"]["type"] == "Point" and scene["properties"]["radius_m"] == 100.0
    fix = doc["features"][2]["properties"]
    assert fix["time_utc"].endswith("Z") and fix["time_local"].endswith("+01:00")
    passed = json.loads(exports["off-pass.geojson"][0])
    (segment,) = [f for f in passed["features"] if f["properties"]["record"] == "segment"]
    assert segment["geometry"]["type"] == "LineString"  # between the two fixes either side
    away = json.loads(exports["off-away.geojson"][0])
    assert away["features"][1]["properties"]["record"] == "exclusion"
    lines = exports["off-at.csv"][0].split(b"\r\n")
    assert lines[0].startswith(b"n,record,device_id,time_utc,time_local,lon,lat")
    assert lines[2].startswith(b"1,scene,") and lines[3].startswith(b"2,match,")


@pytest.mark.parametrize("fmt", ["geojson", "csv"])
def test_any_one_byte_edit_fails_verification(exports, fmt: str) -> None:
    data, _head, _n = exports[f"off-pass.{fmt}"]
    for pos in range(len(data)):
        for new in {data[pos] ^ 0x01, ord("0") if data[pos] != ord("0") else ord("1")}:
            edited = data[:pos] + bytes([new]) + data[pos + 1 :]
            assert not evidence.verify(edited).ok, (pos, data[max(0, pos - 20) : pos + 20])
    assert not evidence.verify(data[:-1]).ok  # a byte removed
    assert not evidence.verify(data + b"\n").ok  # a byte added


def test_cli_verify(tmp_path: Path, exports) -> None:
    data, head, _ = exports["off-at.geojson"]
    good, bad = tmp_path / "ok.geojson", tmp_path / "bad.geojson"
    good.write_bytes(data)
    i = data.index(b'"accuracy_m":8.0') + len(b'"accuracy_m":')
    bad.write_bytes(data[:i] + b"9" + data[i + 1 :])

    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "em_service.cli", "evidence", "verify", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)

    ok = run(str(good), "--expect-head", head)
    assert ok.returncode == 0 and head in ok.stdout, ok.stderr
    assert run(str(bad)).returncode == 1
    assert run(str(good), "--expect-head", "0" * 64).returncode == 1

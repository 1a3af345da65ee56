"""Output contracts: every message decodes and validates; files are deterministic; CLI works."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import msgspec
import pytest

from em_service.contracts import Conditions, Scene
from em_service.contracts.codec import decode_reading, encode
from em_service.contracts.schema_export import SCHEMA_DIR
from simulator.cli import main, parse_start
from simulator.config import DEFAULT_START
from simulator.truth import TruthRecord, decode_lines

ARGS = ["--persons", "26", "--seed", "3", "--no-progress"]


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "a"
    assert main([*ARGS, "--out", str(path)]) == 0
    return path


def test_same_seed_same_bytes(out: Path, tmp_path: Path) -> None:
    again = tmp_path / "b"
    assert main([*ARGS, "--out", str(again)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_other_seed_other_readings(out: Path, tmp_path: Path) -> None:
    other = tmp_path / "c"
    assert main([*ARGS[:-3], "--seed", "4", "--no-progress", "--out", str(other)]) == 0
    assert (out / "readings.jsonl").read_bytes() != (other / "readings.jsonl").read_bytes()


def test_every_reading_decodes_and_is_canonical(out: Path) -> None:
    lines = (out / "readings.jsonl").read_bytes().splitlines()
    assert len(lines) > 20_000
    now = DEFAULT_START + timedelta(days=1, minutes=10)  # just after the run: nothing "future"
    types = set()
    for line in lines:
        reading = decode_reading(line, now=now)
        types.add(type(reading).__name__)
        assert encode(reading) == line  # byte for byte what codec.encode writes for the struct
    assert types == {"GpsReading", "AlcoholReading", "DeviceEvent"}


def test_readings_validate_against_json_schema(out: Path) -> None:
    validator = _validator("reading")
    lines = (out / "readings.jsonl").read_bytes().splitlines()
    sample = lines[::97] + [line for line in lines if b'"type":"gps"' not in line]
    for line in sample:
        validator.validate(json.loads(line))


def test_conditions_and_scenes_decode_and_validate(out: Path) -> None:
    cond_v, scene_v = _validator("conditions"), _validator("scene")
    conditions = (out / "conditions.jsonl").read_bytes().splitlines()
    assert len(conditions) == 26
    for line in conditions:
        msgspec.json.decode(line, type=Conditions)
        cond_v.validate(json.loads(line))
    as_array = msgspec.json.decode((out / "conditions.json").read_bytes(), type=list[Conditions])
    assert [encode(c) for c in as_array] == conditions
    scenes = (out / "scenes.jsonl").read_bytes().splitlines()
    assert scenes
    for line in scenes:
        msgspec.json.decode(line, type=Scene)
        scene_v.validate(json.loads(line))


def test_truth_file_is_well_formed(out: Path) -> None:
    records = decode_lines((out / "truth.jsonl").read_bytes())
    assert records
    ids = [r.truth_id for r in records]
    assert len(set(ids)) == len(ids)
    for r in records:
        assert set(msgspec.json.decode(encode(r))) == set(TruthRecord.__struct_fields__)
        if r.ref_truth_id is not None:
            assert r.ref_truth_id in ids and r.type.endswith("_ended")
        if r.occurred_from and r.occurred_to:
            assert r.occurred_from <= r.occurred_to
        if r.expect == "alert" and r.occurred_at:
            assert r.occurred_from <= r.occurred_at <= r.occurred_to
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["summary"]["truth"]["records"] == len(records)


def test_cli_needs_a_destination(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--persons", "2"])
    assert "--out DIR and/or --kafka" in capsys.readouterr().err


def test_em_service_forwards_simulate(capsys: pytest.CaptureFixture[str]) -> None:
    from em_service.cli import main as em_main

    with pytest.raises(SystemExit) as exc:
        em_main(["simulate", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for needle in (
        "--persons",
        "--days",
        "--start",
        "--seed",
        "--out",
        "--kafka",
        "--speed",
        "--scenarios",
        "--gps-interval-s",
        "near_miss",
        "truth_id",
        "occurred_from",
    ):
        assert needle in text


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2026-10-24T12:00:00Z", "2026-10-24T12:00:00+00:00"),
        ("2026-07-01T09:30:00+01:00", "2026-07-01T08:30:00+00:00"),
    ],
)
def test_parse_start(text: str, iso: str) -> None:
    assert parse_start(text).isoformat() == iso


def test_parse_start_rejects_naive() -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        parse_start("2026-10-24T12:00:00")


def test_scenario_spec_parsing() -> None:
    from simulator.scenarios import KINDS, assign, parse

    assert parse("none") == {}
    assert parse("all") == dict.fromkeys(KINDS, 1)
    assert parse("near_miss=2,near_miss")["near_miss"] == 3
    with pytest.raises(ValueError, match="unknown scenario"):
        parse("teleport")
    with pytest.raises(ValueError, match="scripted people"):
        assign(parse("all"), 5)
    placed = assign(parse("scene_not_visited,drinking"), 1)
    assert [i.person for i in placed] == [0, None]


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    for bad in (["--speed", "slow"], ["--scenarios", "teleport"], ["--start", "yesterday"]):
        with pytest.raises(SystemExit) as exc:
            main([*bad, "--out", str(tmp_path)])
        assert exc.value.code == 2

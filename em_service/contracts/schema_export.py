"""Generate ``schemas/*.schema.json`` (JSON Schema draft 2020-12) from the msgspec contracts.

The structs are the source of truth; ``python -m em_service.contracts.schema_export --write``
rewrites the files and ``--check`` (used by the tests) fails when they drift.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from em_service.contracts.alerts import Alert
from em_service.contracts.conditions import Conditions
from em_service.contracts.dlq import DeadLetter
from em_service.contracts.readings import AlcoholReading, DeviceEvent, GpsReading, Reading
from em_service.contracts.scenes import Scene

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://em-service.invalid/schemas/"

#: message name -> contract type. One file per message: ``schemas/<name>.schema.json``.
CONTRACTS: dict[str, Any] = {
    "reading": Reading,
    "reading.gps": GpsReading,
    "reading.alcohol": AlcoholReading,
    "reading.event": DeviceEvent,
    "alert": Alert,
    "scene": Scene,
    "conditions": Conditions,
    "dlq": DeadLetter,
}

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def _normalise_descriptions(node: Any) -> Any:
    """Return ``node`` with every ``description`` dedented by ``inspect.cleandoc``.

    msgspec copies docstrings into descriptions; whether it dedents them changed between
    releases (0.23 does, older ones did not), so the files are normalised here and stay the
    same whichever version generated them.
    """
    if isinstance(node, dict):
        return {
            k: inspect.cleandoc(v)
            if k == "description" and isinstance(v, str)
            else _normalise_descriptions(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_normalise_descriptions(v) for v in node]
    return node


def schema_for(name: str) -> dict[str, Any]:
    """Return the JSON Schema document for message ``name``."""
    body = _normalise_descriptions(msgspec.json.schema(CONTRACTS[name]))
    doc: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{ID_BASE}{name}.schema.json",
        "title": name,
    }
    doc.update(body)
    return doc


def render(name: str) -> str:
    """Return the schema file text for ``name`` (stable: sorted keys, two-space indent)."""
    return json.dumps(schema_for(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def drift(schema_dir: Path = SCHEMA_DIR) -> list[str]:
    """Return the names whose file in ``schema_dir`` differs from the contracts."""
    out = []
    for name in CONTRACTS:
        path = schema_dir / f"{name}.schema.json"
        if not path.exists() or path.read_text(encoding="utf-8") != render(name):
            out.append(name)
    return out


def write(schema_dir: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file; return the paths written."""
    schema_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in CONTRACTS:
        path = schema_dir / f"{name}.schema.json"
        path.write_text(render(name), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """CLI: ``--write`` the schema files or ``--check`` them for drift."""
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true")
    group.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.write:
        for path in write():
            print(f"wrote {path.name}")
        return 0
    stale = drift()
    if stale:
        print(f"schemas out of date: {', '.join(stale)} (run with --write)", file=sys.stderr)
        return 1
    print("schemas up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

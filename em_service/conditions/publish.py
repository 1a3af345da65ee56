"""``em-service conditions load FILE.json|DIR``: validate conditions and publish them.

A file holds one conditions object or a list of them; a directory is read for ``*.json``.
Each is published to the compacted conditions topic with key = offender_id.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from em_service import kafka_io
from em_service.conditions.validate import InvalidConditions, parse_conditions
from em_service.contracts import Conditions
from em_service.contracts.codec import encode
from em_service.settings import Settings


def read_documents(path: Path, *, crs: str) -> tuple[list[Conditions], list[str]]:
    """Return the valid conditions under ``path`` and one error line per invalid document."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    good: list[Conditions] = []
    errors: list[str] = []
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            errors.append(f"{file.name}: not readable JSON: {exc}")
            continue
        for i, doc in enumerate(data if isinstance(data, list) else [data]):
            try:
                good.append(parse_conditions(json.dumps(doc), crs=crs))
            except InvalidConditions as exc:
                errors.append(f"{file.name}[{i}]: {exc}")
    return good, errors


async def publish(settings: Settings, documents: list[Conditions]) -> int:
    """Publish ``documents`` to the conditions topic (key = offender_id); return the count."""
    messages = [(c.offender_id.encode(), encode(c)) for c in documents]
    return await kafka_io.send_all(
        settings.kafka_bootstrap,
        settings.topic_conditions,
        messages,
        max_request_size=settings.kafka_max_message_bytes,
        settings=settings,
    )


def main(settings: Settings, path: Path, *, dry_run: bool = False) -> int:
    """Load, validate and publish; print a summary; exit 1 if any document was invalid."""
    good, errors = read_documents(path, crs=settings.projected_crs)
    for line in errors:
        print(f"invalid: {line}")
    if good and not dry_run:
        asyncio.run(publish(settings, good))
    verb = "valid (dry run)" if dry_run else "published"
    print(f"{len(good)} {verb}, {len(errors)} invalid")
    return 1 if errors else 0

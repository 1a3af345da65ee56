"""What ``em-service scenes import`` and ``em-service evidence verify`` do (``cli`` only parses).

Each function prints a short result and returns the process exit code.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from em_service.scenes.importer import ImportReport
    from em_service.settings import Settings

from em_service import kafka_io


async def _import(
    settings: Settings, path: Path, *, radius_m: float | None, all_types: bool, publish: bool
) -> ImportReport:

    from em_service.clock import wall_now
    from em_service.contracts import Scene
    from em_service.contracts.codec import encode
    from em_service.devstack import ensure_topics_async
    from em_service.scenes import store as scene_store
    from em_service.scenes.config import get_scene_settings
    from em_service.scenes.importer import import_file
    from em_service.store import audit, migrate, open_store

    store = open_store(settings)
    producer = None
    try:
        if settings.db_auto_upgrade:
            migrate.upgrade(store)
        if publish:
            await ensure_topics_async(settings, only=[settings.topic_scenes])
            producer = kafka_io.producer(settings)
            await producer.start()

        async def publish_batch(batch: list[Scene]) -> None:
            futures = [
                await producer.send(settings.topic_scenes, encode(s), key=s.scene_id.encode())
                for s in batch
            ]
            await asyncio.gather(*futures)

        def store_batch(batch: list[Scene]) -> None:
            with store.write() as session:
                scene_store.upsert_scenes(
                    session, batch, crs=settings.projected_crs, now=wall_now(settings)
                )

        report = await import_file(
            path,
            get_scene_settings(),
            store_batch=store_batch,
            publish_batch=publish_batch if publish else None,
            radius_m=radius_m,
            all_types=all_types,
            crs=settings.projected_crs,
        )
        with store.write() as session:
            audit.append(
                session,
                actor=f"cli:{getpass.getuser()}",
                role="admin",
                action="scenes.import",
                purpose=f"import {path.name}"[:200],
                detail={
                    "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                    "format": report.format,
                    "imported": report.imported,
                    "bad": len(report.bad),
                    "skipped": report.skipped,
                    "published": publish,
                },
            )
        return report
    finally:
        if producer is not None:
            await producer.stop()
        store.dispose()


def scenes_import(
    settings: Settings,
    path: Path,
    *,
    radius_m: float | None = None,
    all_types: bool = False,
    publish: bool = True,
) -> int:
    """Import scenes from ``path``; exit 0 if every row was good, 1 if some were bad, 2 if the
    file could not be read."""
    from em_service.scenes.importer import BadFile

    if not path.is_file():
        print(f"error: {path} is not a file", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(
            _import(settings, path, radius_m=radius_m, all_types=all_types, publish=publish)
        )
    except BadFile as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 2
    for line, reason in report.bad:
        print(f"{path}:{line}: {reason}", file=sys.stderr)
    print(report.summary() + ("" if publish else " (not published: --no-publish)"))
    return 1 if report.bad else 0


def evidence_verify(path: Path, *, expect_head: str | None = None) -> int:
    """Verify an exported evidence file; exit 0 if intact, 1 if not."""
    from em_service.scenes import evidence

    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = evidence.verify(data)
    if expect_head and result.ok and result.head != expect_head:
        result.problems.append(f"head {result.head} is not the expected {expect_head}")
    if not result.ok:
        for problem in result.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        print(f"FAILED: {path} does not verify ({result.format})")
        return 1
    what = "records in its exports, files and map image" if result.format == "pack" else "records"
    print(f"OK: {path}: {result.records} {what} ({result.format}), head {result.head}")
    print("Compare the head with the audit log entry of the export (scene.evidence.export).")
    return 0

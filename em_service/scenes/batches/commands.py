"""``em-service scenes import --format crime-batch``, ``scenes batch-rerun``, ``scenes
batch-report`` and ``scenes watch-batches`` (``cli`` only parses). Each returns an exit code."""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from em_service.contracts import Scene
    from em_service.settings import Settings

from em_service import kafka_io

log = logging.getLogger(__name__)


def _print_report(path: Path, report: dict[str, Any], as_json: bool, note: str = "") -> None:
    if as_json:
        print(json.dumps(report, sort_keys=True, ensure_ascii=False))
        return
    for e in report["errors"]:
        print(f"{path}:{e['line']}: {e['crime_reference'] or '-'}: {e['reason']}", file=sys.stderr)
    batches = ", ".join(report.get("batches") or []) or "none"
    print(
        f"crime batch {batches}: {report['accepted']} accepted, {report['rejected']} rejected"
        + note
    )


async def publish(settings: Settings, scenes: list[Scene]) -> None:
    """Publish ``scenes`` to the scenes topic (acks=all) and wait for every acknowledgement."""

    from em_service.contracts.codec import encode
    from em_service.devstack import ensure_topics_async

    await ensure_topics_async(settings, only=[settings.topic_scenes])
    producer = kafka_io.producer(settings)
    await producer.start()
    try:
        futures = [
            await producer.send(settings.topic_scenes, encode(s), key=s.scene_id.encode())
            for s in scenes
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _receive(settings: Settings, path: Path, data: bytes, *, source: str, publish_: bool):
    from em_service.clock import wall_now
    from em_service.scenes.batches import service
    from em_service.scenes.batches.config import get_batch_settings
    from em_service.scenes.config import get_scene_settings
    from em_service.store import audit, migrate, open_store

    store = open_store(settings)
    try:
        if settings.db_auto_upgrade:
            migrate.upgrade(store)
        received = service.receive(
            store,
            data,
            batch_settings=get_batch_settings(),
            scene_settings=get_scene_settings(),
            crs=settings.projected_crs,
            source=source,
            file_name=path.name,
            now=wall_now(settings),
        )
        if publish_ and received.scenes:
            asyncio.run(publish(settings, received.scenes))
        with store.write() as session:
            audit.append(
                session,
                actor=f"{source}:{getpass.getuser()}",
                role="admin",
                action="crime_batches.import",
                purpose=f"import {path.name}"[:200],
                detail={
                    "file_sha256": received.file_sha256,
                    "batches": list(received.runs),
                    "accepted": len(received.parsed.crimes),
                    "rejected": len(received.parsed.rejections),
                    "published": publish_,
                },
            )
        return received
    finally:
        store.dispose()


def batch_import(
    settings: Settings, path: Path, *, check: bool, as_json: bool, publish_: bool = True
) -> int:
    """Import (or ``check``) a crime batch file: exit 0 if every row was accepted, 1 if some
    were rejected, 2 if the file was rejected whole."""
    from em_service.clock import wall_now
    from em_service.scenes.batches import service
    from em_service.scenes.batches.config import get_batch_settings
    from em_service.scenes.batches.format import BadFile

    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if check:
            parsed = service.check(
                data, get_batch_settings(), now=wall_now(settings), crs=settings.projected_crs
            )
            report = parsed.report()
            note = " (checked only: nothing imported)"
        else:
            received = _receive(settings, path, data, source="cli", publish_=publish_)
            report = received.report()
            note = "" if publish_ else " (not published: --no-publish)"
    except BadFile as exc:
        report = {"accepted": 0, "rejected": 0, "errors": [], "file_rejected": str(exc)}
        if as_json:
            print(json.dumps(report, sort_keys=True))
        else:
            print(f"error: {path}: {exc}", file=sys.stderr)
        return 2
    _print_report(path, report, as_json, note)
    return 1 if report["rejected"] else 0


def batch_rerun(settings: Settings, batch_id: str, *, trigger: str = "rerun") -> int:
    """Start a new matching run of a stored batch (exit 1 if the batch is unknown)."""
    from em_service.clock import wall_now
    from em_service.scenes.batches import service
    from em_service.scenes.batches.config import get_batch_settings
    from em_service.scenes.config import get_scene_settings
    from em_service.store import open_store

    store = open_store(settings)
    try:
        started = service.rerun(
            store,
            batch_id,
            trigger=trigger,
            batch_settings=get_batch_settings(),
            scene_settings=get_scene_settings(),
            now=wall_now(settings),
        )
    finally:
        store.dispose()
    if started is None:
        print(f"error: no crime batch {batch_id}", file=sys.stderr)
        return 1
    run_id, scenes = started
    asyncio.run(publish(settings, scenes))
    print(f"crime batch {batch_id}: run {run_id} ({trigger}) started, {len(scenes)} crimes")
    return 0


def batch_report(settings: Settings, batch_id: str, *, fmt: str, output: Path | None) -> int:
    """Write a batch's proximity report (json, csv or geojson) to ``output`` or stdout."""
    from em_service.clock import wall_now
    from em_service.scenes.batches import report
    from em_service.store import open_store

    store = open_store(settings)
    try:
        with store.read() as session:
            records = report.build(session, batch_id, generated_at=wall_now(settings))
    except KeyError:
        print(f"error: no crime batch {batch_id}", file=sys.stderr)
        return 1
    finally:
        store.dispose()
    if fmt == "json":
        data = (
            json.dumps(records[1] | {"run": records[0]["run"]}, ensure_ascii=False) + "\n"
        ).encode()
        head = ""
    else:
        data, head = report.export(records, fmt)
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        print(f"{output}: {len(records)} records" + (f", head {head}" if head else ""))
    return 0


def watch_batches(settings: Settings, folder: Path | None, *, once: bool = False) -> int:
    """Import every ``*.csv`` dropped in ``folder``; move it to ``done/`` (or ``rejected/`` if
    rejected whole) with its report beside it as ``FILE.report.json``. ``once``: one pass."""
    from em_service.scenes.batches.config import get_batch_settings
    from em_service.scenes.batches.format import BadFile

    folder = folder or get_batch_settings().drop_folder
    if folder is None:
        print("error: no folder given and EM_BATCHES_DROP_FOLDER not set", file=sys.stderr)
        return 2
    done, rejected = folder / "done", folder / "rejected"
    done.mkdir(parents=True, exist_ok=True)
    rejected.mkdir(parents=True, exist_ok=True)
    pause = get_batch_settings().drop_poll_s
    while True:
        for path in sorted(folder.glob("*.csv")):
            if time.time() - path.stat().st_mtime < 2 * pause and not once:
                continue  # still being written: take it on a later pass
            try:
                report = _receive(
                    settings, path, path.read_bytes(), source="folder", publish_=True
                ).report()
                target = done
            except BadFile as exc:
                report = {"accepted": 0, "rejected": 0, "errors": [], "file_rejected": str(exc)}
                target = rejected
            (target / f"{path.name}.report.json").write_text(json.dumps(report, sort_keys=True))
            shutil.move(str(path), target / path.name)
            print(f"{path.name}: {report['accepted']} accepted, {report['rejected']} rejected")
        if once:
            return 0
        time.sleep(pause)


def demo_batches(
    settings: Settings,
    scenes: list[Scene],
    folder: Path,
    *,
    force_code: str = "KNT",
    wait_s: float = 60.0,
) -> list[str]:
    """For ``em-service demo``: write the simulated scenes as a force's daily batches, import
    them (published: the archiver matches them) and return one line per batch once its run is
    done (or the wait is over)."""
    from em_service.scenes.batches import report as batch_report
    from em_service.scenes.batches import store as batch_store
    from em_service.store import open_store
    from simulator.crime_batch import write_batches

    paths, _left_out = write_batches(scenes, folder, force_code=force_code)
    batch_ids = []
    for path in paths:
        batch_ids += list(
            _receive(settings, path, path.read_bytes(), source="demo", publish_=True).runs
        )
    store = open_store(settings)
    lines = []
    try:
        deadline = time.monotonic() + wait_s
        for batch_id in batch_ids:
            while True:
                with store.read() as session:
                    run = batch_store.runs_of(session, batch_id)[0]
                    if run.status == "done" or time.monotonic() > deadline:
                        from em_service.clock import wall_now

                        summary = batch_report.build(
                            session, batch_id, generated_at=wall_now(settings)
                        )[1]
                        break
                time.sleep(0.5)
            lines.append(
                f"crime batch {batch_id}: {summary['crimes']} crimes, "
                f"{summary['crimes_matched']} matched, {summary['wearers_matched']} wearers; "
                f"run {run.run_id} {run.status}"
            )
    finally:
        store.dispose()
    return lines

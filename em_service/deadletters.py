"""``em-service dlq show|replay``: inspect dead letters and re-drive them after a fix.

``show`` lists what is on the dead-letter topic by reason (and how many of each are not yet
re-driven). ``replay --reason R`` sends the exact original bytes of every dead letter with
reason ``R``, with their original key, back to the readings topic, exactly once: a
transactional producer (``transactional.id`` = the group below) commits the re-driven records
together with its position on the dead-letter topic in consumer group
``<app_id>-dlq-replay-<reason>``. A crash re-drives nothing twice (the transaction aborts; the
next run starts from the committed position); a second replay that runs at the same time
fences the first; and a later replay only sees dead letters added since. Only the letters
present when it starts are taken; those that fail again come back as new dead letters.
Letters whose original bytes were truncated (or do not match their checksum) are listed, never
sent.

``--victims`` does the same for protected victims' dead letters (``em.victim_readings.dlq``,
re-driven to ``em.victim_readings``; groups ``<app_id>-dlq-replay-victims-<reason>``). Their
original bytes hold a victim's position: ``show`` prints their metadata only (never the bytes,
and not a ``detail`` that could quote them).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO, get_args

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from em_service import kafka_io
from em_service.contracts.dlq import DeadLetter, DlqReason
from em_service.settings import Settings

REASONS: tuple[str, ...] = get_args(DlqReason)
_decoder = msgspec.json.Decoder(DeadLetter)
_BATCH = 500


#: Reasons whose ``detail`` is written from fixed text and the reading's field names, never its
#: coordinates: shown for a victim's letter. Others (``processing_error`` quotes an exception
#: message, ``unprojectable`` may quote the fix) are withheld.
_VICTIM_SAFE_DETAIL = frozenset(REASONS) - {"processing_error", "unprojectable"}


@dataclass(frozen=True)
class Letters:
    """One dead-letter topic: where its letters are re-driven, and whether their bytes are private
    (a victim's position: never printed)."""

    dlq: str
    target: str
    group_infix: str
    private: bool


def letters_of(settings: Settings, *, victims: bool = False) -> Letters:
    """Return the readings' dead letters, or the victims' with ``victims``."""
    if victims:
        return Letters(
            settings.topic_victim_dlq, settings.topic_victim_readings, "victims-", private=True
        )
    return Letters(settings.topic_dlq, settings.topic_readings, "", private=False)


def replay_group(settings: Settings, reason: str, *, victims: bool = False) -> str:
    """Consumer group (and transactional id) of the replays of one reason."""
    infix = letters_of(settings, victims=victims).group_infix
    return f"{settings.app_id}-dlq-replay-{infix}{reason}"


def original(letter: DeadLetter) -> bytes | None:
    """Return the letter's original bytes, or None if they cannot be re-driven as they were."""
    if getattr(letter, "truncated", False):
        return None
    raw = base64.b64decode(letter.original_b64)
    checksum = getattr(letter, "original_sha256", None)
    if checksum is not None and hashlib.sha256(raw).hexdigest() != checksum:
        return None
    if len(raw) != letter.original_size:
        return None
    return raw


def decode(value: bytes | None) -> DeadLetter | None:
    """Return the dead letter in ``value``, or None if it is not one."""
    try:
        return _decoder.decode(value or b"")
    except msgspec.DecodeError:
        return None


@dataclass
class ReplayReport:
    """What one replay did."""

    reason: str
    redriven: int = 0
    not_redrivable: list[str] = field(default_factory=list)  # "partition:offset"
    other_reasons: int = 0


async def _committed(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict:
    out = {}
    for tp in tps:
        out[tp] = await consumer.committed(tp)
    return out


async def replay(
    settings: Settings,
    reason: str,
    dry_run: bool = False,
    batch: int = _BATCH,
    *,
    victims: bool = False,
) -> ReplayReport:
    """Re-drive every dead letter with ``reason`` not re-driven before (see the module doc);
    ``victims``: the victims' dead letters, to the victim topic."""
    if reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r}; one of {', '.join(REASONS)}")
    s, group = settings, replay_group(settings, reason, victims=victims)
    letters = letters_of(settings, victims=victims)
    report = ReplayReport(reason)
    tps = await kafka_io.partitions(s.kafka_bootstrap, letters.dlq, s)
    if not tps:
        return report
    producer = None
    if not dry_run:
        producer = kafka_io.producer(s, transactional_id=group)
        await producer.start()  # fences an earlier replay of this reason, aborts its txn
    consumer = kafka_io.consumer(
        bootstrap=s.kafka_bootstrap, group_id=group, auto_offset_reset="earliest", settings=s
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp, committed in (await _committed(consumer, tps)).items():
            consumer.seek(tp, max(committed if committed is not None else 0, starts[tp]))
        while True:
            todo = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
            if not todo:
                break
            fetched = await consumer.getmany(*todo, timeout_ms=1000, max_records=batch)
            records = {tp: [r for r in recs if r.offset < ends[tp]] for tp, recs in fetched.items()}
            records = {tp: recs for tp, recs in records.items() if recs}
            if not records:
                continue
            if producer is None:
                _tally(report, records, reason)
                continue
            await producer.begin_transaction()
            try:
                sent = await _send(producer, letters.target, report, records, reason)
                await producer.send_offsets_to_transaction(
                    {
                        tp: OffsetAndMetadata(recs[-1].offset + 1, "")
                        for tp, recs in records.items()
                    },
                    group,
                )
                await asyncio.gather(*sent)
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.abort_transaction()
                raise
            await producer.commit_transaction()
    finally:
        await consumer.stop()
        if producer is not None:
            await producer.stop()
    return report


def _tally(
    report: ReplayReport, records: dict[TopicPartition, list[ConsumerRecord]], reason: str
) -> list[tuple[bytes | None, bytes]]:
    """Count ``records`` into ``report``; return the (key, original) pairs to re-drive."""
    out = []
    for recs in records.values():
        for rec in recs:
            letter = decode(rec.value)
            if letter is None or letter.reason != reason:
                report.other_reasons += 1
                continue
            raw = original(letter)
            if raw is None:
                report.not_redrivable.append(f"{rec.partition}:{rec.offset}")
                continue
            report.redriven += 1
            out.append((letter.key.encode() if letter.key is not None else None, raw))
    return out


async def _send(producer, topic, report, records, reason) -> list:
    return [
        await producer.send(topic, raw, key=key) for key, raw in _tally(report, records, reason)
    ]


@dataclass
class Shown:
    """Dead letters on the topic: counts by reason, pending (not re-driven) by reason, a sample."""

    by_reason: Counter = field(default_factory=Counter)
    pending: Counter = field(default_factory=Counter)
    letters: list[tuple[ConsumerRecord, DeadLetter | None]] = field(default_factory=list)
    private: bool = False  # victims' letters: their bytes are never printed


async def show(
    settings: Settings, reason: str | None = None, limit: int = 20, *, victims: bool = False
) -> Shown:
    """Read the dead-letter topic up to its end now; keep the newest ``limit`` matching letters.
    ``victims``: the victims' dead-letter topic."""
    s = settings
    letters = letters_of(settings, victims=victims)
    tps = await kafka_io.partitions(s.kafka_bootstrap, letters.dlq, s)
    out = Shown(private=letters.private)
    if not tps:
        return out
    marks: dict[str, dict[TopicPartition, int]] = {}
    for r in REASONS:
        probe = kafka_io.consumer(
            bootstrap=s.kafka_bootstrap,
            group_id=replay_group(s, r, victims=victims),
            settings=s,
        )
        await probe.start()
        try:
            marks[r] = {tp: (await probe.committed(tp)) or 0 for tp in tps}
        finally:
            await probe.stop()
    consumer = kafka_io.consumer(
        bootstrap=s.kafka_bootstrap,
        auto_offset_reset="earliest",  # the default ("latest") could race a seek to the start
        settings=s,
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp, start in (await consumer.beginning_offsets(tps)).items():
            consumer.seek(tp, start)
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            batch = await consumer.getmany(timeout_ms=1000, max_records=_BATCH)
            for tp, recs in batch.items():
                for rec in recs:
                    if rec.offset >= ends[tp]:
                        continue
                    letter = decode(rec.value)
                    r = letter.reason if letter else "<undecodable>"
                    out.by_reason[r] += 1
                    if letter and rec.offset >= marks[r][tp]:
                        out.pending[r] += 1
                    if reason in (None, r):
                        out.letters.append((rec, letter))
                        del out.letters[:-limit]
    finally:
        await consumer.stop()
    return out


def print_shown(shown: Shown, out: TextIO = sys.stdout) -> None:
    """Print counts by reason, then the newest letters (a victim's: metadata only)."""
    if shown.private:
        print(
            "victim dead letters: original bytes (the victim's position) are redacted, never shown",
            file=out,
        )
    print(f"{'reason':<20} {'letters':>8} {'not re-driven':>14}", file=out)
    for reason, n in sorted(shown.by_reason.items()):
        print(f"{reason:<20} {n:>8} {shown.pending.get(reason, 0):>14}", file=out)
    for rec, letter in shown.letters:
        if letter is None:
            print(f"\n{rec.partition}:{rec.offset}  <undecodable>", file=out)
            continue
        raw = original(letter)
        if shown.private:
            detail = _victim_detail(letter)
            preview = "<redacted: a victim's position>" + (
                "" if raw is not None else " (truncated: cannot be re-driven)"
            )
        else:
            detail = letter.detail
            preview = repr(raw[:160]) if raw is not None else "<truncated: cannot be re-driven>"
        print(
            f"\n{rec.partition}:{rec.offset}  {letter.rejected_at.isoformat()}  {letter.reason}"
            f"  key={letter.key}  {letter.original_size} bytes"
            f"  from {letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
            f"\n  {detail}\n  {preview}",
            file=out,
        )


def _victim_detail(letter: DeadLetter) -> str:
    if letter.reason in _VICTIM_SAFE_DETAIL:
        return letter.detail
    if letter.reason == "processing_error":  # "<exception type>: <message>"
        return f"{letter.detail.split(':', 1)[0]} (message withheld: it may quote the fix)"
    return "<detail withheld: it may quote the fix>"


def main_show(settings: Settings, reason: str | None, limit: int, *, victims: bool = False) -> int:
    print_shown(asyncio.run(show(settings, reason, limit, victims=victims)))
    return 0


def main_replay(
    settings: Settings, reason: str, dry_run: bool, batch: int = _BATCH, *, victims: bool = False
) -> int:
    report = asyncio.run(replay(settings, reason, dry_run=dry_run, batch=batch, victims=victims))
    verb = "would re-drive" if dry_run else "re-drove"
    target = letters_of(settings, victims=victims).target
    print(f"{verb} {report.redriven} dead letters with reason {reason} to {target}")
    if report.not_redrivable:
        print(
            f"{len(report.not_redrivable)} could not be re-driven (truncated or corrupt): "
            + ", ".join(report.not_redrivable)
        )
    return 0

"""The alert outbox never skips an event while several writers commit at once.

Two writers (as two archivers would) apply alerts concurrently, each holding its transaction open
for a random moment after its event got its id; a reader follows the outbox by id as the SSE hub
and the webhook outlet do (never looking back). Afterwards every event in the table must have
been read. Without the outbox lock a PostgreSQL sequence hands out ids that commit out of order
and the reader skips some: the control test shows the check catches that.
"""

from __future__ import annotations

import os
import random
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from em_service.store import Store, alerts
from em_service.store.models import AlertEvent
from tests.database import Database
from tests.store.factories import T0, alert


def _writer(db: Database, name: str, stop: threading.Event, seed: int, errors: list) -> None:
    rng = random.Random(seed)
    store = db.store()
    try:
        n = 0
        while not stop.is_set():
            try:
                with store.write() as s:
                    alerts.apply_alert(
                        s,
                        alert(
                            alert_id=f"alert-{name}-{n:06d}", occurred_at=T0 + timedelta(seconds=n)
                        ),
                        now=T0,
                    )
                    s.flush()  # the event draws its id now …
                    time.sleep(rng.uniform(0, 0.01))  # … and commits a little later
            except OperationalError as exc:
                if "database is locked" not in str(exc):
                    raise
                continue  # SQLite's busy timeout ran out on a loaded machine: retry, as the archiver does
            n += 1
    except Exception as exc:  # reported by the test, not lost in the thread
        errors.append(exc)
    finally:
        store.dispose()


def _follow(store: Store, stop: threading.Event, seen: list[int]) -> None:
    cursor = 0
    while True:
        done = stop.is_set()  # read once more after the writers have stopped
        with store.read() as s:
            batch = alerts.events_after(s, after=cursor, only=None, limit=500)
        seen += [e.id for e, _ in batch]
        if batch:
            cursor = batch[-1][0].id
        elif done:
            return


#: How long the writers race (the issue asks for 30 s; CI runs 10 s per engine, set
#: EM_OUTBOX_RACE_S=30 for the full run).
RACE_S = float(os.environ.get("EM_OUTBOX_RACE_S", "10"))


def _race(db: Database, seconds: float) -> tuple[list[int], list[int]]:
    """Run two writers and one reader for ``seconds``; return (ids read, ids stored)."""
    stop = threading.Event()
    errors: list[Exception] = []
    writers = [
        threading.Thread(target=_writer, args=(db, f"w{i}", stop, i, errors), daemon=True)
        for i in (1, 2)
    ]
    reader_store = db.store()
    seen: list[int] = []
    reader_stop = threading.Event()
    reader = threading.Thread(target=_follow, args=(reader_store, reader_stop, seen), daemon=True)
    for t in [*writers, reader]:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in writers:
        t.join(30)
    reader_stop.set()
    reader.join(30)
    with reader_store.read() as s:
        stored = list(s.scalars(select(AlertEvent.id).order_by(AlertEvent.id)))
    reader_store.dispose()
    assert errors == []
    return seen, stored


def test_two_writers_and_a_reader_never_skip_an_event(database: Database) -> None:
    seen, stored = _race(database, RACE_S)
    assert len(stored) > 40  # the writers did real work (even on a loaded machine)
    assert seen == stored  # every event read, once, in id order


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_without_the_outbox_lock_a_reader_skips_events(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the check above does catch commit-order gaps when the lock is off."""
    monkeypatch.setattr(alerts, "lock_outbox", lambda session: None)
    seen, stored = _race(database, 10.0)
    assert set(seen) < set(stored)  # some events were committed behind the reader's cursor

"""Signed checkpoints of the audit chain, kept outside the database.

The hash chain alone proves only that the rows agree with each other: whoever can write the
database can delete the tail and move ``audit_head`` back, or re-chain a log with rows removed.
A checkpoint records the head (``seq``, ``hash``) and the alert outbox position at a moment,
signed with HMAC-SHA256 under a key the database user does not hold
(``EM_AUDIT_CHECKPOINT_KEY_FILE`` or ``EM_AUDIT_CHECKPOINT_KEY``), and is appended to a file
outside the database (``EM_AUDIT_CHECKPOINT_FILE``, default ``audit-checkpoints.jsonl`` in the
state dir, mode 0600). Each checkpoint also signs the previous one's MAC, so lines cannot be
dropped from the middle or reordered unnoticed.

:func:`verify` compares the database with every checkpoint and names what happened:

* **truncated** — the log ends before a checkpointed entry, and the alert outbox has not moved
  back (rows were deleted, ``audit_head`` moved back, or every row deleted);
* **rolled back** — the same, and the alert outbox is behind the checkpoint too (an older copy
  of the database was put in place);
* **rebuilt** — a checkpointed entry exists but its hash differs (rows removed or edited and the
  chain recomputed);
* **forged** — a checkpoint's signature or its link to the one before does not verify.

What it cannot prove: anything done after the newest checkpoint (the interval is the window);
that the checkpoint file itself was not truncated at its end by someone who can write it (ship
copies off the host: it is append-only text); that rows were honest when written.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import select
from sqlalchemy.orm import Session

from em_service.settings import Settings
from em_service.store import alerts
from em_service.store.models import AuditEntry, AuditHead
from em_service.store.types import iso

CHECKPOINT_TIME = Gauge(
    "em_audit_checkpoint_timestamp_seconds",
    "Unix time of the last audit checkpoint this process wrote (outside the database)",
)
_GENESIS_MAC = "0" * 64


class CheckpointError(ValueError):
    """The checkpoint key or file cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One signed record of the audit head."""

    seq: int
    hash: str
    outbox: int
    at: str
    prev_mac: str
    mac: str

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "outbox": self.outbox,
            "at": self.at,
            "prev_mac": self.prev_mac,
        }


def load_key(settings: Settings) -> bytes | None:
    """Return the checkpoint key (file first, then the environment), or None if unset."""
    if settings.audit_checkpoint_key_file is not None:
        path = settings.audit_checkpoint_key_file.expanduser()
        try:
            key = path.read_bytes().strip()
        except OSError as exc:
            raise CheckpointError(f"cannot read the checkpoint key file {path}: {exc}") from None
    elif settings.audit_checkpoint_key is not None:
        key = settings.audit_checkpoint_key.get_secret_value().encode()
    else:
        return None
    if len(key) < 32:
        raise CheckpointError("the audit checkpoint key must have at least 32 bytes")
    return key


def checkpoint_path(settings: Settings) -> Path:
    """Return the checkpoint file's path."""
    if settings.audit_checkpoint_file is not None:
        return settings.audit_checkpoint_file.expanduser()
    return settings.resolved_state_dir() / "audit-checkpoints.jsonl"


def _mac(key: bytes, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def _parse(line: str) -> Checkpoint:
    d = json.loads(line)
    return Checkpoint(
        int(d["seq"]), str(d["hash"]), int(d["outbox"]), str(d["at"]), d["prev_mac"], d["mac"]
    )


def read_all(path: Path) -> list[Checkpoint | str]:
    """Return the checkpoints of ``path`` in order (an unreadable line as its error text)."""
    if not path.exists():
        return []
    out: list[Checkpoint | str] = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(_parse(line))
        except (ValueError, KeyError, TypeError) as exc:
            out.append(f"checkpoint line {n} is unreadable ({exc})")
    return out


def write(session: Session, path: Path, key: bytes, now: datetime) -> Checkpoint:
    """Append a signed checkpoint of the current head to ``path`` (locked, fsynced, 0600)."""
    head = session.get(AuditHead, 1)
    if head is None:
        raise CheckpointError("audit_head is missing")
    outbox = alerts.last_event_id(session)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        prev = _GENESIS_MAC
        for line in f.read().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                prev = _parse(line).mac if line.strip() else prev
        body = {"seq": head.seq, "hash": head.hash, "outbox": outbox, "at": iso(now)}
        body["prev_mac"] = prev
        cp = Checkpoint(**body, mac=_mac(key, body))
        f.write(json.dumps({**body, "mac": cp.mac}, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    CHECKPOINT_TIME.set(now.timestamp())
    return cp


def verify(session: Session, path: Path, key: bytes) -> list[str]:
    """Return what the checkpoints in ``path`` show wrong with the database's audit log."""
    problems: list[str] = []
    valid: list[Checkpoint] = []
    prev = _GENESIS_MAC
    for n, cp in enumerate(read_all(path), 1):
        if isinstance(cp, str):
            problems.append(f"forged: {cp}")
            continue
        if not hmac.compare_digest(cp.mac, _mac(key, cp.body())):
            problems.append(f"forged: checkpoint {n} ({cp.at}) has an invalid signature")
            continue
        if cp.prev_mac != prev:
            problems.append(f"forged: checkpoint {n} ({cp.at}) does not follow the one before it")
        prev = cp.mac
        valid.append(cp)
    if not valid:
        return problems
    seqs = sorted({cp.seq for cp in valid if cp.seq > 0})
    stored = dict(
        session.execute(select(AuditEntry.seq, AuditEntry.hash).where(AuditEntry.seq.in_(seqs)))
        .tuples()
        .all()
    )
    log_end = session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1)) or 0
    rebuilt = False
    for cp in valid:
        if cp.seq in stored and stored[cp.seq] != cp.hash:
            rebuilt = True
            problems.append(
                f"rebuilt: entry {cp.seq} is not the one checkpointed at {cp.at} (rows were "
                "removed or changed and the chain recomputed)"
            )
    newest = valid[-1]
    if log_end < newest.seq and not rebuilt:
        outbox = alerts.last_event_id(session)
        gone = "every entry" if log_end == 0 else f"entries {log_end + 1}..{newest.seq}"
        if outbox < newest.outbox:
            problems.append(
                f"rolled back: the database is older than the checkpoint of {newest.at} "
                f"(audit log ends at {log_end}, checkpoint names {newest.seq}; alert outbox at "
                f"{outbox}, checkpoint {newest.outbox}): an older copy was restored"
            )
        else:
            problems.append(
                f"truncated: {gone} named by the checkpoint of {newest.at} are gone "
                f"(the log ends at {log_end})"
            )
    return problems

"""Which dead letters can be re-driven: only those whose exact original bytes are kept."""

from __future__ import annotations

import base64
import hashlib
from types import SimpleNamespace

from em_service.contracts.codec import Rejected, dead_letter, encode
from em_service.deadletters import REASONS, decode, original


def _letter(raw: bytes, **extra):
    letter = dead_letter(
        raw, Rejected("unknown_device", "d"), topic="r", partition=0, offset=1, key=b"k"
    )
    fields = {f: getattr(letter, f) for f in letter.__struct_fields__}
    return SimpleNamespace(**{**fields, **extra})


def test_original_bytes_come_back_exactly() -> None:
    raw = b'{"type":"event","device_id":"k"}\xff'
    assert original(_letter(raw)) == raw
    assert original(_letter(raw, original_sha256=hashlib.sha256(raw).hexdigest())) == raw


def test_truncated_or_altered_letters_are_not_redriven() -> None:
    raw = b"0123456789"
    assert original(_letter(raw, truncated=True)) is None
    assert original(_letter(raw, original_sha256="0" * 64)) is None
    short = _letter(raw, original_b64=base64.b64encode(raw[:5]).decode())
    assert original(short) is None, "size differs from original_size"


def test_decode_takes_letters_and_refuses_anything_else() -> None:
    letter = dead_letter(
        b"x", Rejected("wrong_key", "d"), topic="r", partition=0, offset=1, key=None
    )
    assert decode(encode(letter)).reason == "wrong_key"
    assert decode(b"{not a letter") is None
    assert decode(None) is None
    assert "unknown_device" in REASONS

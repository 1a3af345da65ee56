"""Which dead letters can be re-driven: only those whose exact original bytes are kept; a
victim's letter is shown without its bytes or any detail that could quote its position."""

from __future__ import annotations

import base64
import hashlib
import io
from types import SimpleNamespace

import msgspec

from em_service.contracts.codec import Rejected, dead_letter, encode
from em_service.contracts.dlq import DeadLetter
from em_service.deadletters import REASONS, Shown, decode, original, print_shown


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


LAT, LON = "51.501234", "-0.141234"  # a victim's position in the letters' bytes and details


def _victim_letter(reason: str, detail: str, *, truncated: bool = False) -> DeadLetter:
    raw = (
        f'{{"type":"gps","device_id":"vic-1","ts":"2026-11-10T09:30:00Z",'
        f'"lat":{LAT},"lon":{LON},"accuracy_m":5}}'
    ).encode()
    letter = dead_letter(
        raw, Rejected(reason, detail), topic="v", partition=0, offset=7, key=b"vic-1"
    )
    return msgspec.structs.replace(letter, truncated=truncated)


def test_victim_letters_are_shown_without_their_position() -> None:
    """Every reason, even a detail quoting the fix, prints no coordinate of a victim's letter."""
    letters = [
        _victim_letter("processing_error", f"ValueError: bad fix lat {LAT} lon {LON}"),
        _victim_letter("unprojectable", f"lat {LAT}, lon {LON} cannot be projected"),
        _victim_letter("future_timestamp", "ts 2026-11-10T09:30:00+00:00 is more than 1 s ahead"),
        _victim_letter("wrong_key", "key b'x' is not device_id 'vic-1'", truncated=True),
    ]
    shown = Shown(private=True)
    for i, letter in enumerate(letters):
        shown.by_reason[letter.reason] += 1
        shown.letters.append((SimpleNamespace(partition=0, offset=i), letter))
    out = io.StringIO()
    print_shown(shown, out)
    text = out.getvalue()
    assert LAT not in text and LON not in text, text
    assert "51.5" not in text and "0.14" not in text, text
    assert "redacted" in text.splitlines()[0]
    assert text.count("<redacted: a victim's position>") == 4
    assert "ValueError (message withheld" in text
    assert "is more than 1 s ahead" in text, "a detail without coordinates is shown"
    assert "key=vic-1" in text and "(truncated: cannot be re-driven)" in text


def test_reading_letters_still_show_their_bytes() -> None:
    shown = Shown()
    shown.letters.append((SimpleNamespace(partition=0, offset=1), _victim_letter("oversize", "d")))
    out = io.StringIO()
    print_shown(shown, out)
    assert LAT in out.getvalue() and "redacted" not in out.getvalue()

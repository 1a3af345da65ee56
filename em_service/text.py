"""One normalisation for every free-text field people type (purposes, notes, crime references).

:func:`clean_text` returns the NFC form with surrounding white space stripped, then checks the
length of *that* (so ``"  x"`` is one character, not three) and refuses characters that can hide
or reorder what an auditor reads: control characters (NUL, ESC, CR…; a line break only where the
field is ``multiline``), Unicode bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E,
U+200F, U+061C), line/paragraph separators and lone surrogates. What is stored and audited is
exactly the returned text.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


class TextError(ValueError):
    """Free text that cannot be accepted (the message says why)."""


def clean_text(
    value: str,
    *,
    what: str = "text",
    min_length: int = 1,
    max_length: int = 200,
    multiline: bool = False,
) -> str:
    """Return ``value`` normalised (NFC, stripped); raise :class:`TextError` if it is refused."""
    text = unicodedata.normalize("NFC", value).strip()
    if multiline:
        text = text.replace("\r\n", "\n")
    for ch in text:
        if multiline and ch in "\n\t":
            continue
        if ch in BIDI_CONTROLS:
            raise TextError(f"{what} contains a bidirectional control character U+{ord(ch):04X}")
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            raise TextError(f"{what} contains a control character U+{ord(ch):04X}")
    if len(text) < min_length:
        raise TextError(f"{what} must have at least {min_length} character(s) besides spaces")
    if len(text) > max_length:
        raise TextError(f"{what} must have at most {max_length} characters")
    return text


def free_text(what: str, min_length: int, max_length: int, *, multiline: bool = False):
    """Return an ``Annotated[str, …]`` pydantic type applying :func:`clean_text`."""

    def _check(value: str) -> str:
        return clean_text(
            value, what=what, min_length=min_length, max_length=max_length, multiline=multiline
        )

    return Annotated[str, AfterValidator(_check)]


#: Why location data is read (trails, evidence): 3–200 characters, one line.
Purpose = free_text("purpose", 3, 200)
#: A note on an alert: up to 2000 characters, line breaks allowed.
Note = free_text("note", 1, 2000, multiline=True)
#: A crime reference as typed (its plausibility is checked by the scenes settings).
CrimeReference = free_text("crime_reference", 1, 64)


#: A number with a fraction, or with five or more digits (degrees, eastings, northings).
_COORDINATE_LIKE = re.compile(r"[-+]?(?:\d+\.\d+|\d{5,})(?:[eE][-+]?\d+)?")


def without_coordinates(text: str) -> str:
    """Return ``text`` with every number that could be a coordinate replaced by ``…``: what a
    log line may say about a geometry (a zone is often a victim's address)."""
    return _COORDINATE_LIKE.sub("…", text)

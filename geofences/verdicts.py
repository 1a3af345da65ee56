"""Verdict codes shared by zones, curfews and episodes.

A fix is a disc of radius ``accuracy_m * accuracy_scale`` around its reported position. Against
the *breach region* of a rule (the inside of an exclusion zone; the outside of an inclusion zone or
curfew address) the fix is:

``DEFINITE`` (2)
    the whole disc lies in the breach region;
``POSSIBLE`` (1)
    the disc overlaps the breach region but does not lie in it;
``CLEAR`` (0)
    the disc does not touch the breach region;
``UNUSABLE`` (3)
    accuracy worse than the limit (or not a number): no breach decision, still a sign of life;
``INACTIVE`` (4)
    the rule does not apply at that instant (outside its schedule, validity or curfew window).

Codes are ``int8`` in batch results. Curfews use other names for the same codes
(:data:`CURFEW_NAMES`): ``at_home``, ``away_possible``, ``away_definite``, ``unusable``,
``not_applicable``.
"""

from __future__ import annotations

from typing import Final

CLEAR: Final = 0
POSSIBLE: Final = 1
DEFINITE: Final = 2
UNUSABLE: Final = 3
INACTIVE: Final = 4

#: Verdict names for exclusion and inclusion zones, indexed by code.
ZONE_NAMES: Final = ("clear", "possible", "definite", "unusable", "inactive")
#: Verdict names for curfews, indexed by code.
CURFEW_NAMES: Final = ("at_home", "away_possible", "away_definite", "unusable", "not_applicable")

_CODES = {name: code for names in (ZONE_NAMES, CURFEW_NAMES) for code, name in enumerate(names)}


def verdict_code(verdict: int | str) -> int:
    """Return the integer code of a verdict given by code or by zone/curfew name.

    >>> verdict_code("away_definite"), verdict_code("clear"), verdict_code(1)
    (2, 0, 1)
    """
    if isinstance(verdict, str):
        try:
            return _CODES[verdict]
        except KeyError:
            raise ValueError(f"unknown verdict {verdict!r}") from None
    code = int(verdict)
    if not 0 <= code <= INACTIVE:
        raise ValueError(f"unknown verdict code {verdict!r}")
    return code


def verdict_name(code: int, *, curfew: bool = False) -> str:
    """Return the name of verdict ``code`` (curfew names if ``curfew``).

    >>> verdict_name(2), verdict_name(2, curfew=True)
    ('definite', 'away_definite')
    """
    return (CURFEW_NAMES if curfew else ZONE_NAMES)[code]

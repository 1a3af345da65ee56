"""Verdict codes and names, and the runnable examples in the geofences docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

from geofences import verdicts as V

MODULES = [
    "curfew",
    "episodes",
    "index",
    "projection",
    "proximity",
    "schedule",
    "verdicts",
    "zones",
]


def test_codes_and_names() -> None:
    assert [V.verdict_code(n) for n in V.ZONE_NAMES] == [0, 1, 2, 3, 4]
    assert [V.verdict_code(n) for n in V.CURFEW_NAMES] == [0, 1, 2, 3, 4]
    assert V.verdict_name(V.CLEAR, curfew=True) == "at_home"
    assert V.verdict_name(V.INACTIVE) == "inactive"
    with pytest.raises(ValueError):
        V.verdict_code("maybe")
    with pytest.raises(ValueError):
        V.verdict_code(7)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(f"geofences.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0

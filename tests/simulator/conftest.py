"""One small simulation per session (20 people, every scenario), shared by the simulator tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from simulator import SimConfig, Simulation, simulate
from simulator.scenarios import parse

SMALL = SimConfig(persons=26, scenarios=parse("all"), seed=11)
#: Saturday 24 October 2026, 12:00 UTC: the curfew night of the autumn clock change follows.
DST_START = datetime(2026, 10, 24, 12, tzinfo=UTC)


@pytest.fixture(scope="session")
def sim() -> Simulation:
    """20 people, one of every scenario, default start (a Monday in November, GMT)."""
    return simulate(SMALL)


@pytest.fixture(scope="session")
def dst_sim() -> Simulation:
    """Curfew scenarios around the night of 24–25 October 2026 (BST → GMT)."""
    config = SimConfig(
        persons=6,
        start=DST_START,
        days=1.0,
        seed=5,
        scenarios=parse("curfew_late_return,curfew_early_leave,curfew_silent"),
    )
    return simulate(config)


def script_of(sim: Simulation, kind: str):
    """Return the (first) placed script of ``kind``."""
    return next(s for s in sim.scripts if s.kind == kind)


def truth_of(sim: Simulation, scenario: str, type_: str | None = None, expect: str | None = None):
    """Return the truth records of a scenario (optionally of one type / expectation)."""
    return [
        r
        for r in sim.truth
        if r.scenario == scenario
        and (type_ is None or r.type == type_)
        and (expect is None or r.expect == expect)
    ]

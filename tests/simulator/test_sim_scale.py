"""Scale: 5,000 people × 1 day in well under a minute of one core (opt-in: it takes ~30 s).

Run with ``EM_SIM_SCALE_PERSONS=5000 pytest tests/simulator/test_sim_scale.py``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from simulator import SimConfig, simulate
from simulator.output import write_files
from simulator.scenarios import parse
from simulator.summary import summary

PERSONS = int(os.environ.get("EM_SIM_SCALE_PERSONS", "0"))


@pytest.mark.slow
@pytest.mark.skipif(not PERSONS, reason="set EM_SIM_SCALE_PERSONS (e.g. 5000) to run")
def test_generation_scales(tmp_path: Path) -> None:
    cpu0 = time.process_time()
    sim = simulate(SimConfig(persons=PERSONS, scenarios=parse("all")))
    write_files(sim, tmp_path, counts=summary(sim))
    cpu_s = time.process_time() - cpu0
    print(f"{PERSONS} persons x 1 day: {len(sim.fixes):,} fixes, {cpu_s:.1f} s CPU")
    assert len(sim.fixes) > PERSONS * 1300
    assert cpu_s < 60.0 * PERSONS / 5000

"""Smoke test of bench/geofences_bench.py at a tiny size: the last line is the JSON summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "geofences_bench.py"


def test_bench_prints_a_json_summary_last() -> None:
    args = ["--people", "5", "--fixes-per-person", "40", "--scalar-fixes", "50", "--repeats", "1"]
    out = subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    assert set(summary) == {
        "batch_fixes_per_s",
        "scalar_fixes_per_s",
        "ceiling_fixes_per_s",
        "batch_vs_ceiling",
    }
    assert all(v > 0 for v in summary.values())

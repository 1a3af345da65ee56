"""Alert-quality benchmark: a large noisy simulated cohort through the real worker, scored.

1. Simulates N people x D days (heavy noise: outliers, indoor gaps, cellular outages with
   store-and-forward bursts; every scripted scenario K times), deterministic by seed.
2. Replays it as fast as possible through the real worker (``EM_RULE_CLOCK=event``, exactly
   once) and archiver (crime-scene matches from the archive) on the local broker, collecting
   the alerts (read_committed).
3. Scores them against the ground truth (:mod:`em_service.evaluate`): per rule true positives,
   misses, false alerts, detection delay on the stream clock; false alerts per person-month.

Target: 100 % recall, <= 1 false breach alert per person-month. Prints a human summary; the
last line is one JSON object. ``--quick`` runs a smaller cohort (under two minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from em_service import devstack
from em_service.evaluate import BREACH_TYPES, Truth, render, score, summary_json
from em_service.replay import processed, replay
from em_service.settings import get_settings
from simulator import SimConfig, simulate
from simulator.config import NOISE_PRESETS
from simulator.output import TRUTH_COVERAGE
from simulator.scenarios import parse
from tests.service_env import ServiceEnv, free_port, wait_until


def keep(sim, run, out: Path) -> None:
    """Write what ``em-service evaluate`` needs to score the run again into ``out``."""
    from simulator.output import manifest, write_truth

    out.mkdir(parents=True, exist_ok=True)
    write_truth(sim, out / "truth.jsonl")
    (out / "manifest.json").write_text(json.dumps(manifest(sim), indent=2) + "\n")
    (out / "alerts.jsonl").write_bytes(b"".join(msgspec.json.encode(a) + b"\n" for a in run.alerts))
    run.clock.save(out / "stream_clock.npz")
    print(f"kept in {out}: truth.jsonl, manifest.json, alerts.jsonl, stream_clock.npz")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run, under two minutes")
    parser.add_argument("--persons", type=int, default=None, help="default 100 (quick 30)")
    parser.add_argument("--days", type=float, default=None, help="default 3 (quick 1)")
    parser.add_argument("--scenario-repeats", type=int, default=None, help="default 2 (quick 1)")
    parser.add_argument("--noise", choices=sorted(NOISE_PRESETS), default="heavy")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="write truth, alerts and stream clock to DIR"
    )
    args = parser.parse_args()
    persons = args.persons or (30 if args.quick else 100)
    days = args.days or (1.0 if args.quick else 3.0)
    repeats = args.scenario_repeats or (1 if args.quick else 2)
    config = SimConfig(
        persons=persons,
        days=days,
        seed=args.seed,
        scenarios=parse(f"all={repeats}"),
        noise=NOISE_PRESETS[args.noise],
    )

    t = time.perf_counter()
    sim = simulate(config)
    n = len(sim.fixes) + len(sim.alcohol) + len(sim.events)
    print(
        f"{persons} people x {days:g} days, {args.noise} noise, every scenario x{repeats}: "
        f"{n:,} readings, {len(sim.truth)} truth records ({time.perf_counter() - t:.1f} s)"
    )
    broker = get_settings()
    info = devstack.up(broker)  # reuses a running broker, else starts one
    work = Path(tempfile.mkdtemp(prefix="em-quality-"))
    env = ServiceEnv(info.bootstrap, work)
    env.env.update(
        EM_TOPIC_PARTITIONS="1",
        EM_RULE_CLOCK="event",
        EM_TICK_INTERVAL_S="1",
        EM_ARCHIVER_METRICS_PORT=str(free_port()),
    )
    settings = env.settings.model_copy(update={"topic_partitions": 1})
    devstack.ensure_topics(settings, info.bootstrap)
    try:
        env.start("worker", log_name="worker")
        env.start("archiver", log_name="archiver")
        wait_until(lambda: processed(env.metrics_url) >= 0, 60, what="the worker")
        run = asyncio.run(replay(sim, settings, metrics_url=env.metrics_url, timeout_s=3600))
    finally:
        env.stop_all()
        shutil.rmtree(work, ignore_errors=True)
        if info.started:
            devstack.down(broker)
    print(
        f"worker: {n:,} readings in {run.elapsed_s:.0f} s ({n / run.elapsed_s:,.0f}/s), "
        f"{len(run.alerts)} alerts"
    )
    if args.keep:
        keep(sim, run, args.keep)
    truth = [msgspec.convert(r, Truth, from_attributes=True) for r in sim.truth]
    report = score(
        truth,
        run.alerts,
        person_days=persons * days,
        complete=TRUTH_COVERAGE["complete"],
        stream_time=run.clock,
    )
    print(render(report, max_findings=40))
    breach = report.per_person_month(BREACH_TYPES)
    print(f"false breach alerts per person-month: {breach:.2f} (target <= 1)")
    print(json.dumps(summary_json(report, persons=persons, days=days)))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())

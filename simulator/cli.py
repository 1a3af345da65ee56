"""``em-service simulate``: a simulated cohort with ground truth, to files or to Kafka."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from simulator.clock import Pacer, parse_speed
from simulator.config import DEFAULT_START, NOISE_PRESETS, SimConfig
from simulator.scenarios import KINDS, parse

EPILOG = """
scenarios (one scripted person each; --scenarios all | none | kind[=n],…):
{kinds}

output:
  --out DIR writes readings.jsonl (delivery order, the exact Kafka values), conditions.jsonl and
  conditions.json, scenes.jsonl, truth.jsonl and manifest.json. --kafka sends conditions (key
  offender_id, compacted topic), then readings (key device_id) and scenes (key scene_id) merged by
  delivery time and paced by --speed; the ground truth then goes to --out or --truth.
  Progress bars (tqdm) show on a terminal; a summary follows at the end: people, readings by
  type and event, imperfections (outliers, buffered, out of order), scenarios placed or skipped,
  and ground-truth records by expectation and type.

ground truth (truth.jsonl, one JSON object per line; see simulator/truth.py):
  truth_id, expect (alert | no_alert | match | no_match), type (alert type, or scene_proximity),
  scenario (kind, background or incidental), scenario_id, offender_id, device_id, zone_id,
  curfew_id, scene_id, occurred_at (the true instant), occurred_from / occurred_to (the window an
  alert's occurred_at must fall in), episode_start / episode_end, duration_s, severity, late,
  match_class (at_scene | passed_by | near_scene), optional (neither required nor false),
  timing (event, or processing for silence rules that only fire when paced), ref_truth_id
  (the opening record of an …_ended), details (e.g. min_true_distance_m of a near-miss).

time:
  All times are UTC; schedules and scenario times are chosen in Europe/London local time (DST
  aware). With --kafka the service rejects readings stamped more than 5 min in the future, so with
  --speed realtime or xN start in the past: e.g. --start now-1d --days 1 --speed x1440 replays
  yesterday in a minute. The same seed and options give byte-identical files.

examples:
  em-service simulate --out /tmp/sim
  em-service simulate --persons 5000 --days 1 --scenarios none --out /tmp/big
  em-service simulate --kafka --start now-2h --days 0.0833 --speed x10 --truth /tmp/truth.jsonl
"""


def parse_start(text: str, now: datetime | None = None) -> datetime:
    """Return an aware UTC start from RFC 3339, ``now``, or ``now-<n>{d,h,m}``.

    >>> parse_start("2026-10-24T12:00:00+01:00").isoformat()
    '2026-10-24T11:00:00+00:00'
    >>> parse_start("now-1d", datetime(2026, 11, 22, 21, 30, 15, tzinfo=UTC)).isoformat()
    '2026-11-21T21:30:00+00:00'
    """
    m = re.fullmatch(r"now(?:-(\d+(?:\.\d+)?)([dhm]))?", text.strip())
    if m:
        now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
        if m.group(1):
            unit = {"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]
            now -= timedelta(**{unit: float(m.group(1))})
        return now
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"start {text!r} needs a UTC offset (e.g. …Z)")
    return value.astimezone(UTC)


def _start(text: str) -> datetime:
    try:
        return parse_start(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _speed(text: str) -> str:
    try:
        parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _scenarios(text: str) -> dict[str, int]:
    try:
        return parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``em-service simulate``."""
    kinds = "\n".join(f"  {name:<22} {kind.help}" for name, kind in KINDS.items())
    p = argparse.ArgumentParser(
        prog="em-service simulate",
        description="Simulate tagged people (GPS and alcohol tags) with scripted scenarios and "
        "ground truth; write JSON Lines files or send to Kafka. Simulated data only.",
        epilog=EPILOG.format(kinds=kinds),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("cohort")
    g.add_argument("--persons", type=int, default=50, help="people to simulate (default 50)")
    g.add_argument(
        "--days", type=float, default=1.0, help="simulated days, may be fractional (default 1)"
    )
    g.add_argument(
        "--start",
        type=_start,
        default=DEFAULT_START,
        help="start: RFC 3339 with offset, 'now' or 'now-<n>d|h|m' "
        f"(default {DEFAULT_START.isoformat().replace('+00:00', 'Z')})",
    )
    g.add_argument(
        "--seed", type=int, default=7, help="random seed; same seed, same output (default 7)"
    )
    g.add_argument(
        "--scenarios",
        type=_scenarios,
        default=dict.fromkeys(KINDS, 1),
        metavar="SPEC",
        help="scripted scenarios: all (default), none, or kind[=n],… (kinds below)",
    )
    g.add_argument(
        "--gps-interval-s", type=float, default=60.0, help="GPS fix interval, s (default 60)"
    )
    g.add_argument(
        "--alcohol-interval-s",
        type=float,
        default=1800.0,
        help="alcohol reading interval, s (default 1800)",
    )
    g.add_argument(
        "--noise",
        choices=sorted(NOISE_PRESETS),
        default="normal",
        help="outliers, gaps and outages: clean | normal (default) | heavy",
    )
    g.add_argument(
        "--centre",
        default="51.45,-0.97",
        metavar="LAT,LON",
        help="centre of the simulated area, WGS84 degrees (default 51.45,-0.97)",
    )
    g.add_argument(
        "--half-size-m", type=float, default=6000.0, help="half the area's side, m (default 6000)"
    )
    g.add_argument(
        "--scenes-per-day",
        type=float,
        default=2.0,
        help="background burglary scenes per day (default 2)",
    )
    g.add_argument(
        "--silence-buffer-s",
        type=float,
        default=600.0,
        help="service silence buffer assumed by the ground truth, s (default 600)",
    )
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, metavar="DIR", help="write JSON Lines files into DIR")
    o.add_argument("--kafka", action="store_true", help="send to Kafka (bootstrap from settings)")
    o.add_argument("--bootstrap", help="Kafka bootstrap servers (default: EM_KAFKA_BOOTSTRAP)")
    o.add_argument(
        "--speed",
        type=_speed,
        default="fast",
        help="Kafka pacing by delivery time: fast (default) | realtime | xN (e.g. x60)",
    )
    o.add_argument(
        "--truth",
        type=Path,
        metavar="FILE",
        help="ground truth file with --kafka and no --out (default ./truth.jsonl)",
    )
    o.add_argument("--topic-readings", help="readings topic (default: settings)")
    o.add_argument("--topic-conditions", help="conditions topic (default: settings)")
    o.add_argument("--topic-scenes", help="scenes topic (default: settings)")
    o.add_argument(
        "--crime-batch",
        metavar="FORCE",
        help="with --out: also write each day's scenes as FORCE's 13-column crime batch",
    )
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def config_from(args: argparse.Namespace) -> SimConfig:
    """Return the simulation configuration of parsed ``args``."""
    lat, lon = (float(v) for v in args.centre.split(","))
    return SimConfig(
        persons=args.persons,
        start=args.start,
        days=args.days,
        seed=args.seed,
        gps_interval_s=args.gps_interval_s,
        alcohol_interval_s=args.alcohol_interval_s,
        centre_lat=lat,
        centre_lon=lon,
        half_size_m=args.half_size_m,
        scenarios=args.scenarios,
        noise=NOISE_PRESETS[args.noise],
        scenes_per_day=args.scenes_per_day,
        silence_buffer_s=args.silence_buffer_s,
    )


def _bar(disable: bool, total: int, desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit=unit, unit_scale=True, disable=disable or None, leave=False
    )


def _advance(bar, stage: str, done: int) -> None:
    bar.set_description(stage, refresh=False)
    bar.update(done - bar.n)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``em-service simulate``; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.out and not args.kafka:
        parser.error("say where the simulation goes: --out DIR and/or --kafka")
    try:
        config = config_from(args)
    except ValueError as exc:
        parser.error(str(exc))
    from simulator.engine import simulate
    from simulator.summary import render, summary

    began = time.monotonic()
    with _bar(args.no_progress, config.persons, "simulating", "person") as bar:
        try:
            sim = simulate(config, progress=lambda stage, done, _t: _advance(bar, stage, done))
        except ValueError as exc:
            parser.error(str(exc))
    counts = summary(sim)
    generated = time.monotonic() - began
    total = counts["readings"]["total"]
    if args.out:
        from simulator.output import write_files

        with _bar(args.no_progress, total, "writing", "msg") as bar:
            write_files(sim, args.out, tick=bar.update, counts=counts)
        if args.crime_batch:
            from simulator.crime_batch import write_batches

            paths, left_out = write_batches(sim.scenes, args.out, force_code=args.crime_batch)
            print(f"crime batches: {len(paths)} files ({left_out} scenes over 12 h left out)")
    sent = None
    if args.kafka:
        from aiokafka.errors import KafkaError

        try:
            sent = _send(sim, args, total)
        except (KafkaError, OSError) as exc:
            print(f"error: sending to Kafka failed: {exc}", file=sys.stderr)
            return 1
        if not args.out:
            from simulator.output import write_truth

            path = args.truth or Path("truth.jsonl")
            write_truth(sim, path)
            print(f"ground truth: {path}")
    print(render(counts))
    where = f"files in {args.out}" if args.out else ""
    if sent:
        where += (
            (" and " if where else "") + ", ".join(f"{n} {k}" for k, n in sent.items()) + " sent"
        )
    print(f"done in {time.monotonic() - began:.1f} s (generation {generated:.1f} s): {where}")
    return 0


def _send(sim, args: argparse.Namespace, total: int) -> dict[str, int]:
    from em_service.settings import get_settings
    from simulator.output import send_kafka

    settings = get_settings()
    bootstrap = args.bootstrap or settings.kafka_bootstrap
    topics = {
        "readings": args.topic_readings or settings.topic_readings,
        "conditions": args.topic_conditions or settings.topic_conditions,
        "scenes": args.topic_scenes or settings.topic_scenes,
        "victim_readings": settings.topic_victim_readings,
    }
    pacer = Pacer(parse_speed(args.speed))
    ahead_s = sim.end_s - (time.time() + pacer.wall_span_s(sim.config.duration_s))
    if ahead_s > 300:
        print(
            f"warning: the last readings will be {ahead_s / 3600:.1f} h ahead of the wall clock "
            "when sent; the service rejects readings from the future (start earlier)",
            file=sys.stderr,
        )
    with _bar(args.no_progress, total, f"sending to {bootstrap}", "msg") as bar:
        return asyncio.run(
            send_kafka(
                sim,
                bootstrap,
                topics=topics,
                pacer=pacer,
                partitions=settings.topic_partitions,
                tick=bar.update,
                max_request_size=settings.kafka_max_message_bytes,
                settings=settings,
            )
        )


if __name__ == "__main__":
    raise SystemExit(main())

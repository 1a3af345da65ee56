"""``em-service demo``: the whole service on this machine, fed one simulated day.

Local Kafka (devstack), the service topics, the database, two demo API tokens, then the worker,
the archiver and the API as background processes; the simulator replays yesterday (40 people,
every scripted scenario, fixed seed) at ×720 while a live feed prints each alert as it is
committed to the alerts topic. At the end: the alert-quality summary against the simulator's
ground truth, where to look, and how to stop (``em-service demo --stop``).

Each run uses its own topics and app id (``em.demo-<run>.*``) and a fresh database
(``<state_dir>/demo/em.db``), so a second run starts clean on the same broker. Tokens are for
the local demo only: printed and written to ``<state_dir>/demo/tokens.txt`` (mode 600), never
to the repository.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import msgspec

from em_service import devstack, procs
from em_service.clock import wall_now
from em_service.contracts import Alert
from em_service.scrape import scrape
from em_service.settings import Settings, get_settings

if TYPE_CHECKING:
    from em_service.evaluate import Report
    from em_service.replay import Replayed
    from simulator.engine import Simulation

PERSONS, SEED, SPEED = 40, 7, 720.0
SERVICES = ("worker", "archiver", "api")
TOPICS = {"readings": "readings", "alerts": "alerts", "scenes": "scenes"}
TOPICS |= {"conditions": "conditions", "dlq": "readings.dlq"}
TOPICS |= {"victim_readings": "victim_readings", "victim_dlq": "victim_readings.dlq"}


def run_settings(settings: Settings, run: str) -> tuple[Settings, dict[str, str]]:
    """Return the settings of demo run ``run`` and the environment that gives them to children."""
    db = settings.resolved_state_dir() / "demo" / "em.db"
    env = {f"EM_TOPIC_{k.upper()}": f"em.demo-{run}.{v}" for k, v in TOPICS.items()}
    env |= {
        "EM_DATABASE_URL": f"sqlite:///{db}",
        "EM_APP_ID": f"em-demo-{run}",
        "EM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "EM_STATE_DIR": str(settings.resolved_state_dir()),
        "EM_RULE_CLOCK": "event",  # timers on the replayed stream's time, not the wall clock
        "EM_TICK_INTERVAL_S": "1",  # a wall second is 12 simulated minutes at ×720
        "EM_TOPIC_PARTITIONS": "1",  # one worker: in order, and the replay clock is exact
    }
    update = {k[3:].lower(): v for k, v in env.items() if k.startswith("EM_TOPIC_")}
    update |= {
        "app_id": env["EM_APP_ID"],
        "topic_partitions": 1,
        "database_url": env["EM_DATABASE_URL"],
    }
    return settings.model_copy(update=update), env


def yesterday(tz: str) -> datetime:
    """Return local midnight at the start of yesterday, as aware UTC."""
    zone = ZoneInfo(tz)
    today = wall_now().astimezone(zone).date()
    return datetime.combine(today - timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)


# --- steps -----------------------------------------------------------------------------------


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


def _get(url: str, token: str | None = None) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read() or b"{}")


def _wait(what: str, probe, deadline_s: float, state: Path, name: str) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            probe()
            return
        except OSError:
            if time.monotonic() > deadline or not procs.read_pid(state / f"{name}.pid"):
                raise SystemExit(f"{what} did not come up; see {state / f'{name}.log'}") from None
            time.sleep(0.5)


def make_tokens(settings: Settings, offenders: list[str], path: Path) -> dict[str, str]:
    """Apply migrations; create the demo admin token and an officer token with the caseload."""
    from em_service.store import migrate, open_store, tokens

    store = open_store(settings)
    try:
        migrate.upgrade(store)
        with store.write() as session:
            made = {
                "demo-admin": tokens.create_token(
                    session, name="demo-admin", role="admin", actor="demo"
                ),
                "demo-officer": tokens.create_token(
                    session, name="demo-officer", role="officer", caseload=offenders, actor="demo"
                ),
            }
    finally:
        store.dispose()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(f"{name} {token}\n" for name, token in made.items()))
    return made


def feed_line(alert: Alert, tz: ZoneInfo) -> str:
    """Return one line of the live feed for ``alert``."""
    at = alert.occurred_at.astimezone(tz).strftime("%a %H:%M")
    about = (
        f"zone {alert.zone_id}"
        if alert.zone_id
        else f"curfew {alert.curfew_id}"
        if alert.curfew_id
        else f"scene {alert.scene_id}"
        if alert.scene_id
        else ""
    )
    late = "late" if alert.late else ""
    return f"  {at}  {alert.type:<28} {alert.severity:<7}{alert.offender_id:<11}{late:<5}{about}"


def start_services(settings: Settings, env: dict[str, str], state: Path) -> dict[str, str] | None:
    """Spawn the worker, archiver and API; wait until each answers; return their base URLs."""
    from em_service.replay import processed

    ports = {
        "worker": (settings.worker_metrics_host, settings.worker_metrics_port),
        "archiver": (settings.archiver_metrics_host, settings.archiver_metrics_port),
        "api": (settings.api_host, settings.api_port),
    }
    busy = [f"{n} {h}:{p}" for n, (h, p) in ports.items() if not _port_free(h, p)]
    if busy:
        print(f"error: ports in use: {', '.join(busy)} (set EM_*_PORT)", file=sys.stderr)
        return None
    urls = {n: f"http://{h}:{p}" for n, (h, p) in ports.items()}
    for name in SERVICES:
        pid = procs.spawn(name, [name], state, env)
        print(f"    {name:<9} pid {pid:<7} log {state / f'{name}.log'}")
    _wait("the worker", lambda: processed(urls["worker"] + "/metrics"), 90, state, "worker")
    _wait("the archiver", lambda: scrape(urls["archiver"] + "/metrics"), 60, state, "archiver")
    _wait("the API", lambda: _get(urls["api"] + "/healthz"), 60, state, "api")
    return urls


def live_replay(sim: Simulation, rs: Settings, metrics_url: str, tz: ZoneInfo) -> Replayed:
    """Replay ``sim`` at ×SPEED, printing each alert and a mark every 3 simulated hours."""
    from em_service.replay import replay

    mark = [sim.config.start_s + 3 * 3600]

    def progress(done: int, stream_s: float) -> None:
        if stream_s >= mark[0]:
            print(f"  -- {datetime.fromtimestamp(mark[0], tz):%a %H:%M} -- {done:,} readings")
            while mark[0] <= stream_s:
                mark[0] += 3 * 3600

    return asyncio.run(
        replay(
            sim,
            rs,
            metrics_url=metrics_url,
            speed=SPEED,
            on_alert=lambda a: print(feed_line(a, tz), flush=True),
            on_progress=progress,
            timeout_s=900,
        )
    )


def quality(sim: Simulation, replayed: Replayed, demo_dir: Path) -> Report:
    """Write truth, manifest and alerts to ``demo_dir``; print and return the quality report."""
    from em_service.evaluate import Truth, render, score
    from simulator.output import manifest, write_truth

    write_truth(sim, demo_dir / "truth.jsonl")
    (demo_dir / "manifest.json").write_text(json.dumps(manifest(sim), indent=2) + "\n")
    lines = [msgspec.json.encode(a) + b"\n" for a in replayed.alerts]
    (demo_dir / "alerts.jsonl").write_bytes(b"".join(lines))
    replayed.clock.save(demo_dir / "stream_clock.npz")
    truth = [msgspec.convert(r, Truth, from_attributes=True) for r in sim.truth]
    report = score(truth, replayed.alerts, person_days=PERSONS, stream_time=replayed.clock)
    print(f"\n5/5 quality against the ground truth ({demo_dir / 'truth.jsonl'})")
    print("    " + render(report).replace("\n", "\n    "))
    return report


def where_to_look(urls: dict[str, str], made: dict[str, str], state: Path, log: Path) -> None:
    """Print the URLs, tokens, commands and logs of the running demo."""
    demo_dir = state / "demo"
    auth = "-H 'Authorization: Bearer <officer token>'"
    print(f"  console       {urls['api']}/console/ (sign in with the officer token)")
    print(f"  officer token {made['demo-officer']}")
    print(f"  API docs      {urls['api']}/docs")
    print(f"  admin token   {made['demo-admin']}")
    print(f"  alerts        curl {auth} {urls['api']}/api/v1/alerts")
    print(f"  live (SSE)    curl -N {auth} {urls['api']}/api/v1/alerts/stream")
    print(f"  metrics       {urls['worker']}/metrics (worker), {urls['archiver']}/metrics")
    print(f"                (archiver), {urls['api']}/metrics (API, with the admin token)")
    print(
        f"  score again   em-service evaluate --ground-truth {demo_dir / 'truth.jsonl'} \\\n"
        f"                  --alerts {demo_dir / 'alerts.jsonl'} "
        f"--stream-clock {demo_dir / 'stream_clock.npz'}"
    )
    print(f"  database      {demo_dir / 'em.db'} (EM_DATABASE_URL=sqlite:///{demo_dir / 'em.db'})")
    print(f"  logs          {state}/{{worker,archiver,api}}.log, {log}")
    print("Stop all:       em-service demo --stop")


def run(settings: Settings) -> int:
    """Run the demo; return the exit code (0 when every scripted alert came out)."""
    from simulator import SimConfig, simulate
    from simulator.scenarios import parse

    began = time.monotonic()
    state = settings.resolved_state_dir()
    demo_dir = state / "demo"
    demo_dir.mkdir(exist_ok=True)
    tz = ZoneInfo(settings.timezone)
    for name in SERVICES:  # a previous run's processes carry its topics: restart them
        procs.stop(name, state)
    for old in demo_dir.glob("em.db*"):  # the previous run's database (and its WAL files)
        old.unlink()

    print("1/5 Kafka (devstack up)…")
    try:
        info = devstack.up(settings)
    except devstack.DevstackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if info.started:
        (demo_dir / "broker-started").touch()
    run_id = datetime.now().strftime("%Y%m%d-%H%M%S")
    rs, env = run_settings(settings, run_id)
    devstack.ensure_topics(rs, info.bootstrap)
    print(f"    {info.note} at {info.bootstrap}")
    print(f"    topics em.demo-{run_id}.{{readings,alerts,scenes,conditions,readings.dlq}}")

    start = yesterday(settings.timezone)
    sim = simulate(SimConfig(persons=PERSONS, start=start, seed=SEED, scenarios=parse("all")))
    print("2/5 database and demo tokens…")
    made = make_tokens(rs, [c.offender_id for c in sim.conditions], demo_dir / "tokens.txt")
    print(f"    {demo_dir / 'em.db'} migrated; tokens in {demo_dir / 'tokens.txt'}")

    print("3/5 worker, archiver, API…")
    urls = start_services(settings, env, state)
    if urls is None:
        return 2
    print(
        f"4/5 simulating {PERSONS} people on {start.astimezone(tz):%a %d %b %Y} "
        f"(seed {SEED}, every scenario) at x{SPEED:.0f}: live alerts"
    )
    print("  (local time of the event; late = raised from readings that reached us late)\n")
    replayed = live_replay(sim, rs, urls["worker"] + "/metrics", tz)
    report = quality(sim, replayed, demo_dir)
    opening = sum(not a.type.endswith("_ended") for a in replayed.alerts)
    listed = api_check(urls["api"], made["demo-officer"], replayed.alerts)
    print(f"    API: demo-officer sees {listed} of these {opening} alerts (…_ended close them)")
    from em_service.scenes.batches.commands import demo_batches

    for line in demo_batches(rs, sim.scenes, demo_dir):  # the scenes again, as a force sends them
        print(f"    {line}")

    print(f"\nDone in {time.monotonic() - began:.0f} s. Where to look:")
    where_to_look(urls, made, state, info.log_file)
    return 0 if report.recall == 1.0 and listed >= opening else 1


def api_check(api: str, token: str, alerts: list[Alert], deadline_s: float = 30.0) -> int:
    """Return how many of ``alerts`` the API lists for ``token`` (waiting for the archiver).

    ``…_ended`` alerts are not listed on their own: they close the alert they name.
    """
    want = {a.alert_id for a in alerts if not a.type.endswith("_ended")}
    deadline, seen = time.monotonic() + deadline_s, set()
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            page = _get(f"{api}/api/v1/alerts?limit=500", token)
            seen = want & {item["alert_id"] for item in page["items"]}
        if seen == want:
            break
        time.sleep(0.5)
    return len(seen)


def stop(settings: Settings) -> int:
    """Stop the demo's processes, and the devstack Kafka if the demo started it."""
    state = settings.resolved_state_dir()
    for name in SERVICES:
        print(f"{name} stopped" if procs.stop(name, state) else f"no demo {name} was running")
    flag = state / "demo" / "broker-started"
    if flag.exists():
        flag.unlink()
        print("Kafka stopped" if devstack.down(settings) else "no devstack Kafka was running")
    elif devstack.status(settings).answering:
        print("Kafka left running (the demo did not start it; `em-service devstack down` stops it)")
    else:
        print("no Kafka was running")
    return 0


def main(*, stop_all: bool = False) -> int:
    """Entry of ``em-service demo``."""
    settings = get_settings()
    return stop(settings) if stop_all else run(settings)

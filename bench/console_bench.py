"""Console benchmark: page server time on a big store, and Kafka → browser latency.

1. Server time of the alert queue and the caseload review (in-process, signed in as an officer)
   with 100,000 alerts and 500 people in the store: a typical caseload (50 people) and the whole
   cohort (500). Target: p95 < 150 ms.
2. Live latency: the real archiver and API on the local broker, an officer's queue open in
   headless Chromium; alerts produced to the alerts topic at 50/s; time from the broker's ack to
   the row being drawn in the page (a MutationObserver stamps it). Target: p99 < 2 s.

Prints a human summary; the last line is one JSON object. ``--quick`` runs in under two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaProducer
from fastapi.testclient import TestClient
from sqlalchemy import insert

from em_service import devstack
from em_service.api.main import create_app
from em_service.contracts.codec import encode
from em_service.scrape import scrape, total
from em_service.settings import Settings, get_settings
from em_service.store import Store, migrate, tokens
from em_service.store.models import (
    AlertRow,
    DeviceAssignment,
    Fix,
    Offender,
    confirmed_of,
    suppressed_of,
)
from tests.console.browser import browser, chromium_path, sign_in
from tests.console.conftest import sign_in as form_sign_in
from tests.service_env import ServiceEnv, free_port
from tests.store.factories import alert

PEOPLE = 500
ALERTS = 100_000
TYPES = [
    "exclusion_breach",
    "curfew_breach",
    "strap_tamper",
    "inclusion_breach",
    "device_silent",
    "curfew_unverified",
    "alcohol_detected",
    "battery_low",
    "device_fault",
]


def populate(store: Store, now: datetime, seed: int = 7) -> None:
    """500 people with a device and 20 fixes each; 100,000 alerts over 30 days (5 % not closed)."""
    rng = np.random.default_rng(seed)
    t0 = now - timedelta(days=30)
    with store.write() as s:
        s.execute(
            insert(Offender),
            [{"offender_id": f"p-{i:03d}", "created_at": t0} for i in range(PEOPLE)],
        )
        s.execute(
            insert(DeviceAssignment),
            [
                {"device_id": f"tag-{i:03d}", "offender_id": f"p-{i:03d}", "assigned_at": t0}
                for i in range(PEOPLE)
            ],
        )
        end_ms = int(now.timestamp() * 1000)
        s.execute(
            insert(Fix),
            [
                {
                    "device_id": f"tag-{i:03d}",
                    "ts_ms": end_ms - k * 60_000 - i * 1000,
                    "seq": k,
                    "lat": 51.45,
                    "lon": -0.97,
                    "accuracy_m": 8.0,
                    "x_m": 470_000.0,
                    "y_m": 172_000.0,
                    "cell": 0,
                }
                for i in range(PEOPLE)
                for k in range(20)
            ],
        )
        offsets = rng.uniform(0, 30 * 86400, ALERTS)
        people = rng.integers(0, PEOPLE, ALERTS)
        kinds = rng.integers(0, len(TYPES), ALERTS)
        open_ = rng.random(ALERTS) < 0.05
        rows = []
        for n in range(ALERTS):
            at = t0 + timedelta(seconds=float(offsets[n]))
            status = ("open" if n % 2 else "acknowledged") if open_[n] else "closed"
            details = {"evidence": "definite"} if n % 3 else {}
            rows.append(
                {
                    "alert_id": f"bench-{n:07d}",
                    "type": TYPES[kinds[n]],
                    "severity": "high",
                    "offender_id": f"p-{people[n]:03d}",
                    "device_id": f"tag-{people[n]:03d}",
                    "occurred_at": at,
                    "detected_at": at,
                    "late": False,
                    "details_json": json.dumps(details),
                    "confirmed": confirmed_of(details, "high"),
                    "suppressed": suppressed_of(details),
                    "status": status,
                    "status_changed_at": at,
                    "received_at": at,
                }
            )
        for i in range(0, ALERTS, 10_000):
            s.execute(insert(AlertRow), rows[i : i + 10_000])


def _pcts(values: list[float], qs: tuple[int, ...]) -> list[float]:
    return [float(np.percentile(values, q)) * 1000 for q in qs] if values else [float("nan")] * 2


def server_times(work: Path, n: int) -> dict[str, list[float]]:
    """Return p50/p95 ms of the queue and the review for a 50-person and a 500-person caseload."""
    db = work / "pages.db"
    store = Store(f"sqlite:///{db}")
    migrate.upgrade(store)
    now = datetime.now(UTC)
    t = time.perf_counter()
    populate(store, now)
    print(
        f"store: {PEOPLE} people, {ALERTS:,} alerts, {PEOPLE * 20:,} fixes in {time.perf_counter() - t:.1f} s"
    )
    with store.write() as s:
        small = tokens.create_token(
            s, name="bench-50", role="officer", caseload=[f"p-{i:03d}" for i in range(50)]
        )
        big = tokens.create_token(
            s, name="bench-500", role="officer", caseload=[f"p-{i:03d}" for i in range(PEOPLE)]
        )
    store.dispose()
    settings = Settings(
        database_url=f"sqlite:///{db}",
        state_dir=work,
        kafka_bootstrap="127.0.0.1:9",
        console_tile_url="",
        conditions_publish_timeout_s=0.5,
    )
    out: dict[str, list[float]] = {}
    for label, token in (("50", small), ("500", big)):
        with TestClient(create_app(settings)) as client:
            assert form_sign_in(client, token).status_code == 303
            for page in ("/console/", "/console/review"):
                client.get(page)  # warm
                took = []
                for _ in range(n):
                    t = time.perf_counter()
                    r = client.get(page)
                    took.append(time.perf_counter() - t)
                    assert r.status_code == 200, r.text[:200]
                name = "queue" if page == "/console/" else "review"
                out[f"{name}_{label}"] = _pcts(took, (50, 95))
                print(
                    f"  {name:6} caseload {label:>3}: p50 {out[f'{name}_{label}'][0]:6.1f} ms, "
                    f"p95 {out[f'{name}_{label}'][1]:6.1f} ms ({len(r.text) // 1024} KiB)"
                )
    return out


def live_latency(bootstrap: str, work: Path, rate: float, seconds: float) -> list[float]:
    """Alerts on the alerts topic at ``rate``/s → rows drawn in an open queue; seconds each."""
    chromium_path()
    env = ServiceEnv(bootstrap, work)
    archiver_metrics = free_port()
    env.env.update(EM_ARCHIVER_METRICS_PORT=str(archiver_metrics), EM_CONSOLE_TILE_URL="")
    devstack.ensure_topics(env.settings, bootstrap)
    store = Store(f"sqlite:///{work / 'em.db'}")
    migrate.upgrade(store)
    people = [f"live-{i:02d}" for i in range(50)]
    with store.write() as s:
        token = tokens.create_token(s, name="bench-officer", role="officer", caseload=people)
    store.dispose()
    base = f"http://127.0.0.1:{env.api_port}"
    sent: dict[str, float] = {}
    try:
        env.start("api", log_name="api")
        env.start("archiver", log_name="archiver")
        import httpx

        env.wait_until(lambda: httpx.get(f"{base}/healthz").status_code == 200, 30, "the API")
        env.wait_until(
            lambda: (
                total(
                    scrape(f"http://127.0.0.1:{archiver_metrics}/metrics"),
                    "em_archiver_assigned_partitions",
                )
                > 0
            ),
            90,
            "the archiver to join its group",
        )
        with browser() as b:
            page = b.new_page()
            sign_in(page, base, token)
            page.wait_for_selector("#queue[data-live='1']", timeout=15_000)
            page.evaluate(
                """() => { window.__seen = {};
                new MutationObserver(ms => { const t = performance.timeOrigin + performance.now();
                  for (const m of ms) for (const n of m.addedNodes)
                    if (n.dataset && n.dataset.alertId && !(n.dataset.alertId in window.__seen))
                      window.__seen[n.dataset.alertId] = t; })
                .observe(document.getElementById('queue-body'), {childList: true}); }"""
            )

            async def produce() -> None:
                producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
                await producer.start()
                try:
                    total_n = int(rate * seconds)
                    start = time.perf_counter()
                    for i in range(total_n):
                        due = start + i / rate
                        await asyncio.sleep(max(0.0, due - time.perf_counter()))
                        now = datetime.now(UTC)
                        a = alert(
                            f"live-alert-{i:06d}",
                            type="strap_tamper",
                            offender_id=people[i % len(people)],
                            occurred_at=now,
                        )
                        await producer.send_and_wait(
                            env.settings.topic_alerts, encode(a), key=a.offender_id.encode()
                        )
                        sent[a.alert_id] = time.time() * 1000  # acked: committed on Kafka
                finally:
                    await producer.stop()

            worker = threading.Thread(target=lambda: asyncio.run(produce()))
            worker.start()
            while worker.is_alive():
                page.wait_for_timeout(250)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if page.evaluate("Object.keys(window.__seen).length") >= len(sent):
                    break
                page.wait_for_timeout(250)
            seen = page.evaluate("window.__seen")
    finally:
        env.stop_all()
    missing = set(sent) - set(seen)
    if missing:
        print(f"  {len(missing)} of {len(sent)} alerts never drawn within 30 s")
    return [(seen[k] - sent[k]) / 1000 for k in sent if k in seen]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run, under two minutes")
    parser.add_argument("--rate", type=float, default=50.0, help="alerts/s for the live part")
    args = parser.parse_args()
    requests = 20 if args.quick else 60
    seconds = 10.0 if args.quick else 30.0
    work = Path(tempfile.mkdtemp(prefix="em-console-bench-"))
    broker_settings = get_settings()
    info = None
    try:
        print("1. page server time (in-process, signed-in officer)")
        times = server_times(work, requests)
        print(f"2. live: {args.rate:.0f} alerts/s for {seconds:.0f} s → rows in headless Chromium")
        info = devstack.up(broker_settings)  # reuses a running broker, else starts one
        lats = live_latency(info.bootstrap, work, args.rate, seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if info is not None and info.started:
            devstack.down(broker_settings)
    p50, p99 = _pcts(lats, (50, 99))
    print(f"  {len(lats)} alerts drawn: p50 {p50:.0f} ms, p99 {p99:.0f} ms (target p99 < 2000 ms)")
    worst = max(v[1] for v in times.values())
    print(f"  page p95 worst {worst:.0f} ms (target < 150 ms)")
    figures = {
        f"{k}_p{q}_ms": round(v[i], 1) for k, v in times.items() for i, q in enumerate((50, 95))
    }
    figures |= {
        "alerts": ALERTS,
        "people": PEOPLE,
        "live_rate": args.rate,
        "live_alerts": len(lats),
        "live_p50_ms": round(p50, 1),
        "live_p99_ms": round(p99, 1),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())

"""A day of readings for several offenders, each scripted to exercise one rule.

All devices report all day (at home unless the script moves them), so the only alerts are the
scripted ones. Saturday 24 Oct 2026 11:00 UTC to Sunday 25 Oct 09:00 UTC crosses the autumn DST
change (the 19:00–07:00 curfew window that night is 13 hours long).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from em_service.contracts import AlcoholReading, DeviceEvent, GpsReading, Reading, Scene
from em_service.contracts.codec import encode
from tests.trails import ORIGIN_X, ORIGIN_Y, curfew, fix, line, ll, noisy_stay, zone

START = datetime(2026, 10, 24, 11, 0, tzinfo=UTC)
END = datetime(2026, 10, 25, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def at(hour: float, day: int = 24) -> datetime:
    """Return an instant on 24 (or 25) Oct 2026, UTC hours."""
    return datetime(2026, 10, day, tzinfo=UTC) + timedelta(hours=hour)


@dataclass
class Person:
    """One scripted offender: home, conditions, and where they are at each minute."""

    offender_id: str
    device_id: str
    home: tuple[float, float]
    zones: list[dict] = field(default_factory=list)
    away: dict[datetime, tuple[float, float]] = field(default_factory=dict)
    silent: list[tuple[datetime, datetime]] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def conditions(self, **changes: object) -> dict:
        doc = {
            "offender_id": self.offender_id,
            "device_ids": [self.device_id],
            "zones": self.zones,
            "curfews": [curfew(f"c-{self.offender_id}", *self.home)],
            "updated_at": "2026-10-01T00:00:00Z",
            **self.extra,
        }
        doc.update(changes)
        return doc

    def readings(self) -> list[GpsReading]:
        out, t = [], START
        while t <= END:
            if not any(a <= t < b for a, b in self.silent):
                out.append(fix(self.device_id, t, *self.away.get(t, self.home)))
            t += MINUTE
        return out

    def go(self, t0: datetime, points: list[tuple[float, float]]) -> None:
        for i, p in enumerate(points):
            self.away[t0 + i * MINUTE] = p


def _home(i: int) -> tuple[float, float]:
    return ORIGIN_X + 3000.0 * i, ORIGIN_Y


@dataclass
class Scenario:
    """Every person, the conditions events, and readings in delivery order."""

    people: dict[str, Person]
    conditions: list[tuple[bytes, bytes]]
    readings: list[tuple[bytes, bytes]]
    scenes: list[tuple[bytes, bytes]]


def build(seed: int = 7) -> Scenario:
    rng = np.random.default_rng(seed)
    people: dict[str, Person] = {}
    deliveries: list[tuple[datetime, int, Reading]] = []

    def person(name: str, i: int, **kw: object) -> Person:
        p = Person(f"off-{name}", f"tag-{name}", _home(i), **kw)
        people[name] = p
        return p

    # 1. Exclusion breach: walk 600 m into a zone 1 km east of home, stay 20 min, walk back.
    ex = person("ex", 0)
    zx, zy = ex.home[0] + 1000, ex.home[1]
    ex.zones = [zone("z-ex", zx, zy, 150)]
    ex.go(at(13), line(*ex.home, zx, zy, 20) + [(zx, zy)] * 20 + line(zx, zy, *ex.home, 20))

    # 2. Jitter: stand 25 m outside a zone edge for two hours; noisy fixes (5–30 m accuracy).
    jit = person("jit", 1)
    jx, jy = jit.home[0] + 800, jit.home[1]
    jit.zones = [zone("z-jit", jx, jy, 150)]
    edge_x = jx - 150 - 25
    jitter = noisy_stay(jit.device_id, at(13), edge_x, jy, 120, rng)
    jit.silent = [(at(13), at(15))]  # its fixes then are the noisy ones

    # 3. Late return on the DST night: away until 19:30 BST (18:30 UTC), window starts 18:00 UTC.
    dst = person("dst", 2)
    dst.go(at(16), [(dst.home[0] + 800, dst.home[1])] * 150)

    # 4. Tag silent during the curfew: no fixes 20:00–23:00 UTC.
    person("gapc", 3, silent=[(at(20), at(23))])

    # 5. Tag silent outside the curfew: no fixes 13:00–14:00 UTC.
    person("sil", 4, silent=[(at(13), at(14))])

    # 6. Strap tamper at 15:00.
    tam = person("tam", 5)
    deliveries.append(
        (at(15), 0, DeviceEvent(device_id=tam.device_id, ts=at(15), event="strap_tamper"))
    )

    # 7. Store-and-forward: breach during a signal gap 13:00–14:00; the buffered fixes upload in
    #    a shuffled burst when the signal returns at 14:00.
    sf = person("sf", 6)
    sx, sy = sf.home[0] + 1000, sf.home[1]
    sf.zones = [zone("z-sf", sx, sy, 150)]
    sf.go(at(13), line(*sf.home, sx, sy, 20) + [(sx, sy)] * 20 + line(sx, sy, *sf.home, 20))
    burst = [r for r in sf.readings() if at(13) <= r.ts < at(14)]
    sf.silent = [(at(13), at(14))]
    order = rng.permutation(len(burst))

    # 8. Conditions change at 15:00: zone A (east) replaced by zone B (west).
    chg = person("chg", 7)
    ax, bx, cy = chg.home[0] + 1000, chg.home[0] - 1000, chg.home[1]
    chg.zones = [zone("z-chg-a", ax, cy, 150)]
    for t0, x in ((at(13), ax), (at(16), ax), (at(17), bx)):
        chg.go(t0, line(*chg.home, x, cy, 15) + [(x, cy)] * 15 + line(x, cy, *chg.home, 15))

    # 9. Alcohol: readings every 30 min; one drinking episode (0.02 g/dL/h up, 0.015 down).
    alc_curve = (
        [0.0] * 6
        + [0.01, 0.02, 0.03, 0.04, 0.05]
        + [max(0.0, round(0.05 - 0.0075 * k, 4)) for k in range(1, 8)]
        + [0.0] * 20
    )
    for i, tac in enumerate(alc_curve):
        t = START + i * 30 * MINUTE
        deliveries.append(
            (
                t,
                0,
                AlcoholReading(
                    device_id="scram-alc", ts=t, tac_g_dl=tac, skin_temp_c=33.0, ir_value=1200.0
                ),
            )
        )

    # 10. A burglary scene 600 m east of home, open (reported) before the readings arrive. The
    #     tag stands 30 m from it 14:10–14:30 during a signal gap; the buffered fixes upload in
    #     a shuffled burst at 15:00: a late burst near an open scene.
    scn = person("scn", 8)
    cx, cy = scn.home[0] + 600, scn.home[1]
    scn.go(
        at(14),
        line(*scn.home, cx - 30, cy, 10) + [(cx - 30, cy)] * 20 + line(cx - 30, cy, *scn.home, 10),
    )
    scn_burst = [r for r in scn.readings() if at(14) <= r.ts < at(15)]
    scn.silent = [(at(14), at(15))]
    scn_order = rng.permutation(len(scn_burst))
    lon, lat = ll(cx, cy)
    scene = Scene(
        scene_id="sc-burglary-1",
        crime_reference="SIM/0001/26",
        crime_type="burglary_dwelling",
        lat=lat,
        lon=lon,
        radius_m=100.0,
        window_start=at(13.5),
        window_end=at(15.5),
        reported_at=at(12),
    )

    for p in people.values():
        deliveries += [(r.ts, 0, r) for r in p.readings()]
    deliveries += [(at(15), 1 + int(k), scn_burst[k]) for k in scn_order]
    deliveries += [(r.ts, 0, r) for r in jitter]
    deliveries += [(at(14), 1 + int(k), burst[k]) for k in order]  # arrives at 14:00, shuffled
    deliveries.sort(key=lambda d: (d[0], d[1]))

    conditions = [c for c in people.values() if c.offender_id != "off-chg"]
    docs = [p.conditions() for p in conditions]
    docs.append(chg.conditions())
    docs.append(chg.conditions(zones=[zone("z-chg-b", bx, cy, 150)], updated_at=at(15).isoformat()))
    docs.append({"offender_id": "off-alc", "device_ids": ["scram-alc"], "alcohol_monitoring": True})
    return Scenario(
        people=people,
        conditions=[(d["offender_id"].encode(), json.dumps(d).encode()) for d in docs],
        readings=[(r.device_id.encode(), encode(r)) for _, _, r in deliveries],
        scenes=[(scene.scene_id.encode(), encode(scene))],
    )

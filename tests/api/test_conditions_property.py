"""Property: for generated conditions (valid and invalid geometry, sizes, positions, schedules),
the API accepts a document ⇔ the worker's registry applies it. The API runs in-process on the
real broker; the worker side is ``ConditionsRegistry.apply``, the path the worker's feed takes."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from em_service.conditions.registry import ConditionsRegistry
from em_service.conditions.validate import InvalidConditions, version_id
from em_service.store import offenders
from tests.api.conftest import Api
from tests.conditions.cases import rect

pytestmark = pytest.mark.kafka

#: Mostly inside EPSG:27700's area of use (lon -8.82..1.92, lat 49.79..60.94), some beyond it.
LON = st.floats(-5.0, 1.0) | st.floats(-11.0, 4.0)
LAT = st.floats(50.5, 55.0) | st.floats(48.5, 62.0)
#: Sizes in degrees: mostly 10 m–10 km, some from a millimetre to ~400 km (limit 100 km across).
SIZE = st.floats(-4.0, -1.0).map(lambda e: 10.0**e) | st.floats(-8.0, 0.6).map(lambda e: 10.0**e)
TIMES = st.sampled_from(["00:00", "07:00", "19:00", "21:30", "23:59"])
DAY = st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
#: True about one time in ten (Hypothesis favours boundary values, so not ``== 0``).
RARELY = st.integers(0, 9).map(lambda v: v == 5)
MOMENTS = ["2026-11-01T00:00:00Z", "2026-11-15T00:00:00+01:00", "2026-12-01T00:00:00Z"]


def _r(v: float) -> float:
    return round(v, 7)


def _box(w: float, s: float, dx: float, dy: float) -> list[list[float]]:
    return [[_r(x), _r(y)] for x, y in rect(w, s, w + dx, s + dy)]


@st.composite
def geometry(draw: st.DrawFn) -> tuple[dict[str, Any], float | None]:
    """A GeoJSON geometry and radius_m: boxes, bowties, holes in or out, multipolygons, circles."""
    w, s, dx = draw(LON), draw(LAT), draw(SIZE)
    dy = dx * draw(st.floats(0.2, 5.0))
    shape = draw(
        st.sampled_from(["box", "box", "box", "bowtie", "hole", "multi", "point", "point"])
    )
    if shape == "point":
        radius = None if draw(RARELY) else draw(st.floats(0.5, 5_000.0) | st.floats(0.5, 60_000.0))
        return {"type": "Point", "coordinates": [_r(w), _r(s)]}, radius
    ring = _box(w, s, dx, dy)
    if shape == "bowtie":
        ring[2], ring[3] = ring[3], ring[2]
        return {"type": "Polygon", "coordinates": [ring]}, None
    inside = st.floats(0.1, 0.6)  # the other box inside this one; else anywhere near
    fx, fy = draw(inside | st.floats(-1.5, 1.5)), draw(inside | st.floats(-1.5, 1.5))
    other = _box(w + fx * dx, s + fy * dy, dx * 0.3, dy * 0.3)
    if shape == "hole":
        return {"type": "Polygon", "coordinates": [ring, other[::-1]]}, None
    if shape == "multi":
        return {"type": "MultiPolygon", "coordinates": [[ring], [other]]}, None
    return {"type": "Polygon", "coordinates": [ring]}, None


@st.composite
def window(draw: st.DrawFn) -> dict[str, Any]:
    days = [] if draw(RARELY) else draw(st.lists(DAY, min_size=1, max_size=3))
    start = draw(TIMES)
    if draw(RARELY):  # 24 hours from start
        return {"days": days, "start": start, "all_day": True}
    if draw(RARELY):  # end equal to start: refused (it used to mean 24 h)
        return {"days": days, "start": start, "end": start}
    return {"days": days, "start": start, "end": draw(TIMES.filter(lambda t: t != start))}


@st.composite
def exception(draw: st.DrawFn) -> dict[str, Any]:
    day = draw(st.sampled_from(["2026-12-24", "2026-12-25", "2026-12-31", "2027-01-01"]))
    if draw(st.booleans()):
        return {"date": day, "cancelled": True}
    start = draw(TIMES)
    end = start if draw(RARELY) else draw(TIMES.filter(lambda t: t != start))
    return {"date": day, "start": start, "end": end}


@st.composite
def zone(draw: st.DrawFn, zone_id: str) -> dict[str, Any]:
    geom, radius = draw(geometry())
    props: dict[str, Any] = {
        "zone_id": zone_id,
        "kind": draw(st.sampled_from(["exclusion", "inclusion"])),
    }
    if radius is not None:
        props["radius_m"] = radius
    if draw(st.booleans()):
        props["schedule"] = draw(st.lists(window(), min_size=1, max_size=2))
    if draw(st.booleans()):  # a validity interval, now and then empty or reversed
        i, j = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        i, j = (i, j) if draw(RARELY) else (min(i, j), max(i, j) + 1)
        props["valid_from"] = MOMENTS[i]
        if j < len(MOMENTS):
            props["valid_to"] = MOMENTS[j]
    return {"type": "Feature", "geometry": geom, "properties": props}


@st.composite
def curfew(draw: st.DrawFn, curfew_id: str) -> dict[str, Any]:
    lon, lat = draw(st.floats(-3.0, 0.5)), draw(st.floats(50.5, 55.0))
    return {
        "curfew_id": curfew_id,
        "geometry": {"type": "Point", "coordinates": [_r(lon), _r(lat)]},
        "radius_m": draw(st.floats(10.0, 500.0)),
        "windows": draw(st.lists(window(), min_size=1, max_size=2)),
        "exceptions": draw(st.lists(exception(), max_size=2)),
    }


@st.composite
def document(draw: st.DrawFn) -> dict[str, Any]:
    """Conditions with 0–2 zones and 0–1 curfew (ids unique; devices chosen by the test)."""
    n = draw(st.integers(0, 2))
    out: dict[str, Any] = {"zones": [draw(zone(f"z{i}")) for i in range(n)]}
    if draw(st.booleans()):
        out["curfews"] = [draw(curfew("c0"))]
    out["timezone"] = draw(st.sampled_from(["Europe/London", "UTC", "Europe/Paris"]))
    if draw(RARELY):
        out["offender_id"] = "someone-else"  # differs from the path / record key
    return out


def test_the_api_accepts_exactly_what_the_worker_applies(
    kafka_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, crs = kafka_api.headers("admin"), kafka_api.settings.projected_crs
    published: list[tuple[str, bytes]] = []
    publisher = kafka_api.app.state.publisher
    real_publish = publisher.publish

    async def publish(offender_id: str, value: bytes):  # the real publish, recorded
        published.append((offender_id, value))
        return await real_publish(offender_id, value)

    monkeypatch.setattr(publisher, "publish", publish)
    ids = itertools.count()
    outcomes = {200: 0, 422: 0}

    @given(body=document())
    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    def run(body: dict[str, Any]) -> None:
        n = next(ids)
        oid, device = f"p-{n}", f"tag-p-{n}"
        raw = json.dumps({"offender_id": oid, "device_ids": [device], **body}).encode()
        sent = len(published)
        r = kafka_api.client.put(
            f"/api/v1/offenders/{oid}/conditions",
            headers={**admin, "Content-Type": "application/json"},
            content=raw,
        )
        assert r.status_code in (200, 422), r.text
        outcomes[r.status_code] += 1
        try:
            ConditionsRegistry(crs).apply(oid, raw)  # as if produced straight to the topic
            reason = None
        except InvalidConditions as exc:
            reason = str(exc)
        assert (r.status_code == 200) == (reason is None), (r.text, reason)
        with kafka_api.store.read() as session:
            state = offenders.state(session, offender_id=oid)
        if r.status_code == 422:
            assert reason in r.json()["detail"]
            assert len(published) == sent and state is None
            return
        ((key, value),) = published[sent:]
        registry = ConditionsRegistry(crs)
        registry.apply(key, value)  # what the API published, the worker applies
        assert key == oid and registry.offender_for(device) == oid
        assert state.conditions_version == r.json()["version"] == version_id(value)

    run()
    total = sum(outcomes.values())
    assert min(outcomes.values()) >= total // 5, outcomes  # both sides are well exercised

"""Retrospective matching on a real SQLite file: archive → search → matches stored → alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from em_service.contracts import Alert
from em_service.scenes import retro
from em_service.scenes import store as scene_store
from em_service.scenes.alerting import scene_alert_id
from em_service.scenes.config import SceneSettings
from em_service.store import Store, offenders, trail
from tests.scenes.helpers import W0, W1, enrol, readings, scene_msg, stand, walk
from tests.store.factories import conditions

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
NOW = datetime(2026, 10, 21, 12, 0, tzinfo=UTC)
SETTINGS = SceneSettings()


def _people() -> dict[str, list]:
    before = walk(W0 - 50 * MIN, (200.0, 0.0), (3000.0, 0.0), 60.0, 15)
    away = stand(before[-1][0] + MIN, (W1 - before[-1][0]).total_seconds() / 60 + 5, 3000, 0)
    return {
        "off-at": readings(
            "tag-at",
            walk(W0 + 2 * H, (900.0, 0.0), (30.0, 0.0), 60.0, 20)
            + stand(W0 + 2 * H + 20 * MIN, 20, 30.0, 0.0),
        ),
        "off-pass": readings("tag-pass", walk(W0 + 2 * H, (-1320.0, 30.0), (1080.0, 30.0), 90, 11)),
        "off-late": readings("tag-late", stand(W1 + 2 * H, 30, 10.0, 0.0)),
        "off-away": readings("tag-away", before + away),
        "off-far": readings("tag-far", stand(W0, 12 * 60, 5000.0, 5000.0)),
        # In the search radius in the pad (450 m), then away: never close enough to need an
        # alibi, so undecided rather than excluded.
        "off-ring": readings(
            "tag-ring", stand(W0 - 30 * MIN, 10, 450.0, 0.0) + stand(W0 - 19 * MIN, 800, 3000, 0)
        ),
    }


def _alerts(store: Store) -> list[Alert]:
    with store.read() as s:
        return [msgspec.json.decode(a, type=Alert) for *_, a in scene_store.pending_alerts(s)]


def test_retro_matches_excludes_and_alerts_once(store: Store) -> None:
    enrol(store, _people())
    scene = scene_msg("sc-retro")
    found, stored = retro.run(store, scene, SETTINGS, crs="EPSG:27700", now=NOW)

    assert found.devices == 4  # tag-at, -pass, -away and -ring came within the search radius
    assert found.result.undecided == ["off-ring"]
    with store.read() as s:
        rows = {r.offender_id: r for r in scene_store.matches_of_scene(s, "sc-retro")}
        row = scene_store.get_scene(s, "sc-retro")
    assert {k: r.confidence for k, r in rows.items()} == {
        "off-at": "at_scene",
        "off-pass": "passed_by",
        "off-away": "excluded",
    }
    assert rows["off-at"].dwell_s >= 19 * 60 and rows["off-at"].fixes_inside >= 20
    assert rows["off-pass"].fixes_inside == 0 and rows["off-pass"].closest_source == "segment"
    kind, ex, _cfg = scene_store.load_evidence(rows["off-away"])
    assert kind == "exclusion" and ex.fixes_in_window == 12 * 60 + 1
    assert row.searched_at == NOW and '"exclusions":1' in row.search_json

    alerts = _alerts(store)
    assert sorted(stored.new_or_upgraded) == ["at_scene", "passed_by"] and len(stored.alerts) == 2
    assert {(a.offender_id, a.details["confidence"], a.severity) for a in alerts} == {
        ("off-at", "at_scene", "high"),
        ("off-pass", "passed_by", "medium"),
    }
    for a in alerts:
        assert a.type == "scene_proximity" and a.scene_id == "sc-retro"
        assert a.alert_id == scene_alert_id(a.offender_id, a.details["confidence"], scene)
        assert a.location is not None and a.details["crime_reference"] == "CR/sc-retro"

    # Kafka acknowledged them; a second search finds the same and alerts nothing new.
    with store.write() as s:
        scene_store.mark_alerted(
            s, [(a.scene_id, a.offender_id, 3 if a.severity == "high" else 2) for a in alerts]
        )
    _found, again = retro.run(store, scene, SETTINGS, crs="EPSG:27700", now=NOW + H)
    assert again.alerts == [] and _alerts(store) == []


def test_a_reassigned_tag_puts_only_its_wearer_at_the_scene(store: Store) -> None:
    swap = W0 + H
    with store.write() as s:
        offenders.put_conditions(
            s, conditions=conditions("off-a", ["tag-swap"]), changed_at=W0 - 3 * 24 * H
        )
        offenders.put_conditions(s, conditions=conditions("off-a", ["tag-new"]), changed_at=swap)
        offenders.put_conditions(s, conditions=conditions("off-b", ["tag-swap"]), changed_at=swap)
        trail.insert_fixes(
            s,
            readings=readings("tag-swap", stand(W0 - 30 * MIN, 30, 400.0, 0.0))
            + readings("tag-swap", stand(W0 + 3 * H, 20, 20.0, 0.0)),
            crs="EPSG:27700",
        )
    found, _ = retro.run(store, scene_msg("sc-swap"), SETTINGS, crs="EPSG:27700", now=NOW)
    assert [m.offender_id for m in found.result.matches] == ["off-b"]
    assert found.result.undecided == ["off-a"]


def test_a_moved_scene_drops_its_old_matches(store: Store) -> None:
    enrol(store, {"off-at": readings("tag-at", stand(W0 + 2 * H, 20, 30.0, 0.0))})
    retro.run(store, scene_msg("sc-move"), SETTINGS, crs="EPSG:27700", now=NOW)
    moved = scene_msg("sc-move", dx_m=2000.0)
    found, stored = retro.run(store, moved, SETTINGS, crs="EPSG:27700", now=NOW)
    assert found.result.matches == [] and stored.alerts == []
    with store.read() as s:
        assert scene_store.matches_of_scene(s, "sc-move") == []


@pytest.mark.parametrize("low_precision", [False, True])
def test_low_precision_scenes_match_but_do_not_alert(store: Store, low_precision: bool) -> None:
    enrol(store, {"off-at": readings("tag-at", stand(W0 + 2 * H, 20, 30.0, 0.0))})
    scene = scene_msg("sc-month", low_precision=low_precision)
    found, stored = retro.run(store, scene, SETTINGS, crs="EPSG:27700", now=NOW)
    assert [m.confidence for m in found.result.matches] == ["at_scene"]
    assert len(stored.alerts) == (0 if low_precision else 1)

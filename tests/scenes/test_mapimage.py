"""The map image of a match (pure Python PNG): deterministic bytes, well-formed, its caption's
hash kept in a text chunk; the evidence pack is deterministic and refuses any change."""

from __future__ import annotations

import io
import zipfile
import zlib
from datetime import UTC, datetime

import pytest

from em_service.scenes import evidence, mapimage, pack
from em_service.scenes import store as scene_store
from em_service.store import Store
from tests.api.conftest import seed

T = datetime(2026, 10, 24, 21, 0, tzinfo=UTC)


def _input(head: str = "ab" * 32) -> mapimage.MapInput:
    fixes = [
        mapimage.Fix(470800 + i * 40, 170900 + i * 25, T.timestamp() + i * 60, 0 < i < 9)
        for i in range(10)
    ]
    return mapimage.MapInput(
        crime_reference="CR-77",
        offender_id="off-1",
        confidence="passed_by",
        scene_xy=(471000.0, 171000.0),
        radius_m=100.0,
        window=(T, T.replace(hour=23)),
        fixes=fixes,
        segments=[((470900.0, 170960.0), (471000.0, 171010.0), (471050.0, 171030.0))],
        closest=(471000.0, 171010.0, 3.2, T.timestamp() + 240),
        head=head,
    )


def test_same_input_same_bytes_and_the_head_is_in_a_text_chunk() -> None:
    a, b = mapimage.render(_input()), mapimage.render(_input())
    assert a == b
    assert mapimage.png_text(a)["evidence-head"] == "ab" * 32
    assert mapimage.render(_input("cd" * 32)) != a


def test_pixels_show_the_scene_trail_and_caption() -> None:
    data = mapimage.render(_input())
    idat = data[data.index(b"IDAT") + 4 :]
    raw = zlib.decompressobj().decompress(idat)
    w = mapimage.WIDTH
    row = lambda y: raw[y * (w * 3 + 1) + 1 : (y + 1) * (w * 3 + 1)]  # noqa: E731
    colours = {
        bytes(row(y)[x * 3 : x * 3 + 3])
        for y in range(0, mapimage.MAP_H, 4)
        for x in range(0, w, 4)
    }
    assert bytes(mapimage.PURPLE) in colours  # the scene circle
    assert bytes(mapimage.CONF_COLOUR["passed_by"]) in colours  # the trail
    assert bytes(mapimage.RED) in colours  # the closest approach
    caption = {
        bytes(row(y)[x * 3 : x * 3 + 3])
        for y in range(mapimage.MAP_H, mapimage.MAP_H + 140)
        for x in range(w)
    }
    assert bytes(mapimage.BLACK) in caption


def test_malformed_pngs_are_refused() -> None:
    data = bytearray(mapimage.render(_input()))
    data[40] ^= 0x01
    with pytest.raises(ValueError, match=r"CRC|truncated"):
        mapimage.png_text(bytes(data))
    with pytest.raises(ValueError, match="signature"):
        mapimage.png_text(b"GIF89a")


def test_pack_is_deterministic_and_any_edit_is_refused(store: Store) -> None:
    seed(store)
    with store.read() as s:
        scene = scene_store.get_scene(s, "sc-1")
        row = scene_store.get_match(s, "sc-1", "off-1")
        args = {"actor": "investigator-1", "exported_at": T, "crs": "EPSG:27700"}
        one, head, records_head = pack.build(scene, row, **args)
        two, _, _ = pack.build(scene, row, **args)
    assert one == two
    result = evidence.verify(one)
    assert result.ok, result.problems
    assert result.head == head and result.format == "pack"
    with zipfile.ZipFile(io.BytesIO(one)) as z:
        png = z.read("map-sc-1-off-1.png")
    assert mapimage.png_text(png)["evidence-head"] == records_head
    raw = bytearray(one)
    raw[raw.index(b"IDAT") + 20] ^= 0x01  # inside the stored PNG: the ZIP's CRC fails
    assert not evidence.verify(bytes(raw)).ok

"""The evidence image's opt-in base map, against a real tile server on 127.0.0.1: the tiles are
drawn lightened under the overlays at the right places, the caption names their attribution,
the pack records each tile's hash and verifies; any failure gives the image without a base map
("base map unavailable") and the export still succeeds; the PNG decoder reads every filter and
colour type the tiles may use and refuses the rest."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from pyproj import Transformer

from em_service.scenes import basemap, evidence, mapimage, pack
from em_service.scenes import store as scene_store
from em_service.settings import Settings
from em_service.store import Store
from geofences.projection import get_projector
from tests.api.conftest import seed
from tests.scenes.tileserver import closed_port_url, serve, tile_colour

T = datetime(2026, 10, 24, 21, 0, tzinfo=UTC)
W, H = mapimage.WIDTH, mapimage.MAP_H
ATTRIBUTION = "(C) Thames Valley tiles"
PNG_NAME = "map-sc-1-off-1.png"


def _build(store: Store, tiles: basemap.TileSource | None) -> tuple[bytes, dict[str, Any]]:
    with store.read() as s:
        scene = scene_store.get_scene(s, "sc-1")
        row = scene_store.get_match(s, "sc-1", "off-1")
        data, _, _ = pack.build(
            scene, row, actor="investigator-1", exported_at=T, crs="EPSG:27700", tiles=tiles
        )
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return data, {n: z.read(n) for n in z.namelist()}


def _pixels(png: bytes) -> np.ndarray:
    return basemap.decode_png(png).astype(np.int32)


def _line(text: str, y: int, scale: int) -> np.ndarray:
    """The caption band at ``y`` as it looks with ``text`` drawn at x = 10."""
    cv = mapimage.Canvas(W, 7 * scale)
    cv.text(10, 0, text.upper(), mapimage.BLACK, scale)
    return _pixels(cv.png())


def _first_line(store: Store, status: str) -> np.ndarray:
    with store.read() as s:
        confidence = scene_store.get_match(s, "sc-1", "off-1").confidence.replace("_", " ")
    return _line(f"CR-77  off-1  {confidence}  ({status})", 0, 2)


def _frame(store: Store) -> tuple[float, float, float]:
    with store.read() as s:
        scene = scene_store.get_scene(s, "sc-1")
        row = scene_store.get_match(s, "sc-1", "off-1")
        cx, cy, mpp, _ = mapimage.frame(pack.map_input(scene, row, "0" * 64, "EPSG:27700", "UTC"))
    return cx, cy, mpp


@pytest.fixture
def seeded(store: Store) -> Store:
    seed(store)
    return store


def test_tiles_are_drawn_lightened_under_the_overlays_and_recorded(seeded: Store) -> None:
    _, plain = _build(seeded, None)
    with serve() as server:
        source = basemap.TileSource(server.url, ATTRIBUTION, 10.0)
        data, files = _build(seeded, source)
        again, _ = _build(seeded, source)
        served = dict(server.served)
    assert again == data  # the same input and tiles, the same bytes
    result = evidence.verify(data)
    assert result.ok, result.problems

    old, new = _pixels(plain[PNG_NAME]), _pixels(files[PNG_NAME])
    # The map area: background became tiles; what the overlays drew opaquely is unchanged.
    background = (old[:H] == (243, 242, 241)).all(axis=2)
    assert background.mean() > 0.5
    assert (new[:H][background] != (243, 242, 241)).any(axis=1).all()
    overlay = np.zeros((H, W), bool)
    for c in (mapimage.PURPLE, mapimage.RED, mapimage.BLACK, mapimage.GREY, (255, 255, 255)):
        overlay |= (old[:H] == c).all(axis=2)
    overlay |= (old[:H] == mapimage.CONF_COLOUR["at_scene"]).all(axis=2)
    overlay |= (old[:H] == mapimage.CONF_COLOUR["passed_by"]).all(axis=2)
    assert overlay.sum() > 500
    assert (new[:H][overlay] == old[:H][overlay]).all()

    # Where each background pixel lies, the lightened colour of the tile there (own maths).
    manifest = json.loads(files["MANIFEST.json"])
    base = manifest["base_map"]
    zoom, ts = base["zoom"], base["tile_px"]
    assert base["status"] == "drawn" and base["url_template"] == server.url
    assert base["attribution"] == ATTRIBUTION and ts == 256
    cx, cy, mpp = _frame(seeded)
    jj, ii = np.nonzero(background)
    pick = np.arange(0, len(ii), 97)
    ii, jj = ii[pick], jj[pick]
    lon, lat = get_projector("EPSG:27700").to_lonlat(
        cx + (ii + 0.5 - W / 2) * mpp, cy - (jj + 0.5 - H / 2) * mpp
    )
    mx, my = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(lon, lat)
    half = 20037508.342789244
    fx, fy = (mx + half) / (2 * half) * 2**zoom, (half - my) / (2 * half) * 2**zoom
    inner = (np.abs(fx - np.round(fx)) * ts > 3) & (np.abs(fy - np.round(fy)) * ts > 3)
    assert inner.sum() > 100
    for i, j, x, y in zip(ii[inner], jj[inner], fx[inner], fy[inner], strict=True):
        light = [(c + 255) // 2 for c in tile_colour(int(x), int(y))]
        assert new[j, i].tolist() == light
    assert len({tuple(new[j, i]) for i, j in zip(ii, jj, strict=True)}) > 1  # several tiles

    # The manifest records every tile fetched, with its hash; the PNG's chunk says the same.
    recorded = {(zoom, t["x"], t["y"]): t["sha256"] for t in base["tiles"]}
    assert recorded == {k: evidence._sha(v) for k, v in served.items()}
    chunk = mapimage.png_text(files[PNG_NAME])["base-map"]
    assert json.loads(chunk) == base

    # The caption: status on the first line, the attribution under the hash.
    top = H + 10
    assert (new[top + 5 * 26 : top + 5 * 26 + 7] == _line("BASE MAP: " + ATTRIBUTION, 0, 1)).all()
    assert (old[top + 5 * 26 : top + 5 * 26 + 7] != new[top + 5 * 26 : top + 5 * 26 + 7]).any()
    assert (new[top : top + 14] == _first_line(seeded, "BASE MAP")).all()
    assert (new[top + 26 : top + 5 * 26] == old[top + 26 : top + 5 * 26]).all()


def test_a_one_byte_png_edit_or_a_changed_tile_record_is_refused(seeded: Store) -> None:
    with serve() as server:
        data, files = _build(seeded, basemap.TileSource(server.url, ATTRIBUTION, 10.0))
    raw = bytearray(data)
    raw[raw.index(b"IDAT") + 20] ^= 0x01
    assert not evidence.verify(bytes(raw)).ok
    manifest = json.loads(files["MANIFEST.json"])
    manifest["base_map"]["tiles"][0]["sha256"] = "0" * 64
    files["MANIFEST.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    result = evidence.verify(pack._zip(list(files.items())))
    assert any("base_map" in p for p in result.problems), result.problems


@pytest.mark.parametrize("failure", ["500", "garbage", "truncated", "unreachable"])
def test_any_tile_failure_gives_the_image_without_base_map(seeded: Store, failure: str) -> None:
    _, plain = _build(seeded, None)
    with serve(failure if failure != "unreachable" else "ok") as server:
        url = closed_port_url() if failure == "unreachable" else server.url
        data, files = _build(seeded, basemap.TileSource(url, ATTRIBUTION, 10.0))
    result = evidence.verify(data)
    assert result.ok, result.problems
    base = json.loads(files["MANIFEST.json"])["base_map"]
    assert base["status"] == "unavailable" and "tiles" not in base
    old, new = _pixels(plain[PNG_NAME]), _pixels(files[PNG_NAME])
    assert (new[:H] == old[:H]).all()  # the map exactly as without a base map
    top = H + 10
    assert (new[top + 5 * 26 : top + 5 * 26 + 7] == _line("BASE MAP UNAVAILABLE", 0, 1)).all()
    assert (new[top : top + 14] == _first_line(seeded, "BASE MAP UNAVAILABLE")).all()


def test_without_a_tile_url_the_image_and_pack_are_as_before(seeded: Store) -> None:
    _, files = _build(seeded, None)
    assert "base_map" not in json.loads(files["MANIFEST.json"])
    assert "base-map" not in mapimage.png_text(files[PNG_NAME])
    new = _pixels(files[PNG_NAME])
    assert (new[H + 10 : H + 24] == _first_line(seeded, "NO BASE MAP")).all()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _encode(img: np.ndarray, ctype: int, plte: bytes = b"", trns: bytes = b"") -> bytes:
    """A PNG of ``img`` (h × w × channels bytes) with every row's filter cycling 0..4."""
    h, w, ch = img.shape
    rows, prev = [], np.zeros(w * ch, np.int32)
    for y in range(h):
        cur = img[y].reshape(-1).astype(np.int32)
        left = np.concatenate([np.zeros(ch, np.int32), cur[:-ch]])
        ul = np.concatenate([np.zeros(ch, np.int32), prev[:-ch]])
        f = y % 5
        if f == 0:
            pred = np.zeros_like(cur)
        elif f == 1:
            pred = left
        elif f == 2:
            pred = prev
        elif f == 3:
            pred = (left + prev) // 2
        else:
            p = left + prev - ul
            pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - ul)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, ul))
        rows.append(bytes([f]) + ((cur - pred) & 0xFF).astype(np.uint8).tobytes())
        prev = cur

    ihdr = struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
    out += _chunk(b"PLTE", plte) if plte else b""
    out += _chunk(b"tRNS", trns) if trns else b""
    return out + _chunk(b"IDAT", zlib.compress(b"".join(rows))) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("ctype", [0, 2, 3, 4, 6])
def test_decoder_reads_every_filter_and_colour_type(ctype: int) -> None:
    rng = np.random.default_rng(ctype)
    h, w = 20, 17
    if ctype == 3:
        pal = rng.integers(0, 256, (16, 3), dtype=np.uint8)
        alpha = rng.integers(0, 256, 10, dtype=np.uint8)
        idx = rng.integers(0, 16, (h, w, 1), dtype=np.uint8)
        data = _encode(idx, 3, pal.tobytes(), alpha.tobytes())
        a = np.concatenate([alpha, np.full(6, 255, np.uint8)])[idx[..., 0]].astype(np.int32)
        rgb = pal[idx[..., 0]].astype(np.int32)
    else:
        ch = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
        img = rng.integers(0, 256, (h, w, ch), dtype=np.uint8)
        data = _encode(img, ctype)
        colour = img[..., :3] if ctype in (2, 6) else np.repeat(img[..., :1], 3, axis=2)
        rgb = colour.astype(np.int32)
        a = img[..., -1].astype(np.int32) if ctype in (4, 6) else np.full((h, w), 255)
    want = (rgb * a[..., None] + 255 * (255 - a[..., None])) // 255
    assert (basemap.decode_png(data).astype(np.int32) == want).all()


def _png(ihdr: tuple[int, ...], raw: bytes) -> bytes:
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", *ihdr))
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def test_decoder_refuses_what_it_does_not_read() -> None:
    rows = b"\x00" * (4 * 13)  # 4 rows of 4 RGB pixels, filter 0
    assert basemap.decode_png(_png((4, 4, 8, 2, 0, 0, 0), rows)).shape == (4, 4, 3)
    refused = {
        "interlaced": _png((4, 4, 8, 2, 0, 0, 1), rows),
        "16-bit": _png((4, 4, 16, 2, 0, 0, 0), rows),
        "1-bit": _png((4, 4, 1, 0, 0, 0, 0), rows),
        "huge": _png((4096, 4, 8, 2, 0, 0, 0), rows),
        "bomb": _png((4, 4, 8, 2, 0, 0, 0), b"\x00" * 10**6),
        "short": _png((4, 4, 8, 2, 0, 0, 0), rows[:-1]),
        "bad filter": _png((4, 4, 8, 2, 0, 0, 0), b"\x07" + rows[1:]),
        "bad palette index": _png((4, 4, 8, 3, 0, 0, 0), b"\x00\x09\x00\x00\x00" * 4),
        "not a PNG": b"GIF89a",
        "cut": _png((4, 4, 8, 2, 0, 0, 0), rows)[:40],
    }
    for what, data in refused.items():
        with pytest.raises(basemap.TileError):
            basemap.decode_png(data)
            pytest.fail(what)


@pytest.mark.parametrize(
    "url", ["ftp://tiles/{z}/{x}/{y}.png", "https://tiles/{z}/{x}.png", "https://t/{z}/{x}/{y}{q}"]
)
def test_a_bad_tile_url_is_refused_at_start(url: str) -> None:
    with pytest.raises(ValidationError, match="EM_EVIDENCE_TILE_URL"):
        Settings(evidence_tile_url=url)
    assert Settings().evidence_tile_url == ""

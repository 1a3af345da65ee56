"""The map image of one match, rendered by the server as a PNG an investigator can paste into a
statement: the scene circle, the trail in the window (interpolated pass-bys dashed), the
closest approach, a scale bar, a north arrow, local times, and the evidence hash in the caption.

Pure Python (zlib only), a built-in 5x7 pixel font: the same input gives the same bytes, so the
hash of the image is reproducible. Positions are projected to the service's grid (EPSG:27700,
metres), so the scale bar is true. The caption's hash is also kept in a PNG ``tEXt`` chunk
(``evidence-head``) for ``em-service evidence verify``. No base map unless one is configured
(:mod:`em_service.scenes.basemap`): then the lightened tiles are drawn under the overlays, the
caption names their attribution (or says "base map unavailable") and a ``base-map`` text chunk
records the tiles used.
"""

from __future__ import annotations

import itertools
import json
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # verification reads no base map: it stays light for third parties
    from em_service.scenes.basemap import BaseMap, Unavailable

RGB = tuple[int, int, int]
WIDTH, MAP_H, CAPTION_H = 900, 600, 150
WHITE, BLACK, GREY = (255, 255, 255), (11, 12, 12), (80, 90, 95)
PURPLE, RED = (76, 44, 146), (212, 53, 28)
CONF_COLOUR = {"at_scene": (212, 53, 28), "passed_by": (244, 119, 56), "near_scene": (29, 112, 184)}

_GLYPHS = {
    "A": "01110 10001 10001 11111 10001 10001 10001",
    "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110",
    "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111",
    "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111",
    "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110",
    "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001",
    "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001",
    "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110",
    "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101",
    "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110",
    "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010",
    "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 10001 01010 00100 00100 00100",
    "Z": "11111 00001 00010 00100 01000 10000 11111",
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    "a": "00000 00000 01110 00001 01111 10001 01111",
    "b": "10000 10000 10110 11001 10001 10001 11110",
    "c": "00000 00000 01110 10000 10000 10001 01110",
    "d": "00001 00001 01101 10011 10001 10001 01111",
    "e": "00000 00000 01110 10001 11111 10000 01110",
    "f": "00110 01001 01000 11100 01000 01000 01000",
    " ": "00000 00000 00000 00000 00000 00000 00000",
    ":": "00000 01100 01100 00000 01100 01100 00000",
    "-": "00000 00000 00000 11111 00000 00000 00000",
    "+": "00000 00100 00100 11111 00100 00100 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    "/": "00001 00010 00010 00100 01000 01000 10000",
    "(": "00010 00100 01000 01000 01000 00100 00010",
    ")": "01000 00100 00010 00010 00010 00100 01000",
    ",": "00000 00000 00000 00000 01100 00100 01000",
    "=": "00000 00000 11111 00000 11111 00000 00000",
    "_": "00000 00000 00000 00000 00000 00000 11111",
    "?": "01110 10001 00001 00010 00100 00000 00100",
    "<": "00010 00100 01000 10000 01000 00100 00010",
    ">": "01000 00100 00010 00001 00010 00100 01000",
    "[": "01110 01000 01000 01000 01000 01000 01110",
    "]": "01110 00010 00010 00010 00010 00010 01110",
}
FONT = {c: [int(row, 2) for row in rows.split()] for c, rows in _GLYPHS.items()}


class Canvas:
    """An RGB raster with the few drawing operations the map needs (integer arithmetic)."""

    def __init__(self, width: int, height: int, background: RGB = WHITE) -> None:
        self.w, self.h = width, height
        self.px = bytearray(bytes(background) * (width * height))

    def put(self, x: int, y: int, c: RGB, alpha: int = 255) -> None:
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            if alpha >= 255:
                self.px[i : i + 3] = bytes(c)
            else:
                for k in range(3):
                    self.px[i + k] = (c[k] * alpha + self.px[i + k] * (255 - alpha)) // 255

    def rect(self, x0: int, y0: int, x1: int, y1: int, c: RGB) -> None:
        for y in range(max(y0, 0), min(y1, self.h)):
            for x in range(max(x0, 0), min(x1, self.w)):
                self.put(x, y, c)

    def dot(self, x: float, y: float, r: int, c: RGB, alpha: int = 255) -> None:
        cx, cy = round(x), round(y)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if dx * dx + dy * dy <= r * r:
                    self.put(cx + dx, cy + dy, c, alpha)

    def line(
        self, a: tuple[float, float], b: tuple[float, float], c: RGB, width: int = 1, dash: int = 0
    ) -> None:
        """A line of ``width`` px; ``dash`` > 0 draws dashes and gaps of that many px."""
        x0, y0, x1, y1 = round(a[0]), round(a[1]), round(b[0]), round(b[1])
        n = max(abs(x1 - x0), abs(y1 - y0), 1)
        r = width // 2
        for i in range(n + 1):
            if dash and (i // dash) % 2:
                continue
            x, y = x0 + (x1 - x0) * i // n, y0 + (y1 - y0) * i // n
            if r:
                self.dot(x, y, r, c)
            else:
                self.put(x, y, c)

    def disc(self, x: float, y: float, r: float, c: RGB, alpha: int) -> None:
        """A filled translucent circle of radius ``r`` px."""
        rr = r * r
        for py in range(max(int(y - r) - 1, 0), min(int(y + r) + 2, self.h)):
            for px in range(max(int(x - r) - 1, 0), min(int(x + r) + 2, self.w)):
                if (px - x) ** 2 + (py - y) ** 2 <= rr:
                    self.put(px, py, c, alpha)

    def ring(self, x: float, y: float, r: float, c: RGB, width: int = 2) -> None:
        steps = max(24, min(720, int(r * 2)))
        pts = [
            (x + r * math.cos(2 * math.pi * k / steps), y + r * math.sin(2 * math.pi * k / steps))
            for k in range(steps + 1)
        ]
        for p, q in itertools.pairwise(pts):
            self.line(p, q, c, width)

    def text(self, x: int, y: int, s: str, c: RGB = BLACK, scale: int = 2) -> int:
        """Write ``s`` (letters in capitals but hex digits a-f as given; unknown characters as
        ``?``); return the x after it."""
        for ch in s:
            rows = FONT.get(ch) or FONT.get(ch.upper(), FONT["?"])
            for j, bits in enumerate(rows):
                for i in range(5):
                    if bits >> (4 - i) & 1:
                        for dy in range(scale):
                            for dx in range(scale):
                                self.put(x + i * scale + dx, y + j * scale + dy, c)
            x += 6 * scale
        return x

    def png(self, text: dict[str, str] | None = None) -> bytes:
        """Encode as PNG (8-bit RGB, zlib level 9, ``tEXt`` chunks in key order)."""

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (
                struct.pack(">I", len(data))
                + kind
                + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
            )

        raw = b"".join(
            b"\x00" + bytes(self.px[y * self.w * 3 : (y + 1) * self.w * 3]) for y in range(self.h)
        )
        out = b"\x89PNG\r\n\x1a\n" + chunk(
            b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)
        )
        for k, v in sorted((text or {}).items()):
            out += chunk(b"tEXt", k.encode("latin-1") + b"\x00" + v.encode("latin-1", "replace"))
        return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def png_text(data: bytes) -> dict[str, str]:
    """Return the ``tEXt`` chunks of a PNG; raise ValueError if it is not a well-formed PNG
    (signature, chunk lengths and CRCs, IHDR first, IEND last)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG (signature)")
    pos, out, kinds = 8, {}, []
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError("truncated chunk header")
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if len(body) != n or pos + 12 + n > len(data):
            raise ValueError("truncated chunk")
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        if crc != zlib.crc32(kind + body) & 0xFFFFFFFF:
            raise ValueError(f"bad CRC in chunk {kind.decode('latin-1')!r}")
        if kind == b"tEXt":
            key, _, value = body.partition(b"\x00")
            out[key.decode("latin-1")] = value.decode("latin-1")
        kinds.append(kind)
        pos += 12 + n
    if not kinds or kinds[0] != b"IHDR" or kinds[-1] != b"IEND":
        raise ValueError("PNG without IHDR first and IEND last")
    return out


@dataclass(frozen=True)
class Fix:
    x: float
    y: float
    ts_s: float
    in_window: bool


@dataclass(frozen=True)
class MapInput:
    """Everything drawn, already projected to metres (EPSG:27700)."""

    crime_reference: str
    offender_id: str
    confidence: str
    scene_xy: tuple[float, float]
    radius_m: float
    window: tuple[datetime, datetime]
    fixes: Sequence[Fix]
    segments: Sequence[tuple[tuple[float, float], ...]]
    closest: tuple[float, float, float, float] | None  # x, y, metres, ts_s
    head: str
    tz: str = "Europe/London"


def _local(ts: datetime | float, zone: ZoneInfo) -> str:
    if not isinstance(ts, datetime):
        ts = datetime.fromtimestamp(ts, UTC)
    t = ts.astimezone(zone)
    off = t.utcoffset()
    minutes = int(off.total_seconds()) // 60 if off else 0
    sign = "-" if minutes < 0 else "+"
    return f"{t:%Y-%m-%d %H:%M:%S} UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _nice(m: float) -> float:
    """The largest 1, 2 or 5 × 10^k not above ``m``."""
    k = 10 ** math.floor(math.log10(m))
    return max(f * k for f in (1, 2, 5) if f * k <= m)


def frame(m: MapInput) -> tuple[float, float, float, float]:
    """Return the map's centre x, y (metres), metres per pixel and span (metres)."""
    sx, sy = m.scene_xy
    xs = [sx - m.radius_m, sx + m.radius_m] + [f.x for f in m.fixes]
    ys = [sy - m.radius_m, sy + m.radius_m] + [f.y for f in m.fixes]
    for seg in m.segments:
        xs += [p[0] for p in seg]
        ys += [p[1] for p in seg]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 50.0) * 1.25
    mpp = span / min(WIDTH, MAP_H)  # metres per pixel
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    return cx, cy, mpp, span


def base_map_line(base: BaseMap | Unavailable) -> str:
    """Return the caption's base-map line (drawn at scale 1 under the hash)."""
    attribution = getattr(base, "attribution", None)
    if attribution is None:
        return "BASE MAP UNAVAILABLE"
    return f"BASE MAP: {attribution}" if attribution else "BASE MAP"


def render(m: MapInput, base: BaseMap | Unavailable | None = None) -> bytes:
    """Render the map image of one match (PNG bytes, deterministic); ``base``: the base map
    drawn under it (or why it could not be), None when none is configured."""
    zone = ZoneInfo(m.tz)
    cv = Canvas(WIDTH, MAP_H + CAPTION_H)
    pixels = getattr(base, "pixels", None)
    if pixels is not None:
        cv.px[: WIDTH * MAP_H * 3] = pixels.tobytes()
    else:
        cv.rect(0, 0, WIDTH, MAP_H, (243, 242, 241))
    sx, sy = m.scene_xy
    cx, cy, mpp, span = frame(m)

    def px(x: float, y: float) -> tuple[float, float]:
        return WIDTH / 2 + (x - cx) / mpp, MAP_H / 2 - (y - cy) / mpp

    colour = CONF_COLOUR.get(m.confidence, BLACK)
    scx, scy = px(sx, sy)
    cv.disc(scx, scy, m.radius_m / mpp, PURPLE, 40)
    cv.ring(scx, scy, m.radius_m / mpp, PURPLE, 3)
    inside = [f for f in sorted(m.fixes, key=lambda f: f.ts_s) if f.in_window]
    for a, b in itertools.pairwise(inside):
        cv.line(px(a.x, a.y), px(b.x, b.y), colour, 3)
    for seg in m.segments:
        for a, b in itertools.pairwise(seg):
            cv.line(px(*a), px(*b), colour, 3, dash=8)
    for f in sorted(m.fixes, key=lambda f: f.ts_s):
        p = px(f.x, f.y)
        cv.dot(*p, 4, colour if f.in_window else GREY)
    if inside:
        (ax0, ay0), (ax1, ay1) = px(inside[0].x, inside[0].y), px(inside[-1].x, inside[-1].y)
        below = 12 if abs(ax1 - ax0) < 120 and abs(ay1 - ay0) < 12 else 0  # labels apart
        for f, label, dy in ((inside[0], "FIRST ", 0), (inside[-1], "LAST ", below)):
            p = px(f.x, f.y)
            when = _local(f.ts_s, zone)[11:16]
            cv.text(round(p[0]) + 8, round(p[1]) + 8 + dy, label + when, GREY, 1)
    if m.closest is not None:
        x, y, dist, _ts = m.closest
        p = px(x, y)
        cv.ring(*p, 9, RED, 3)
        cv.dot(*p, 3, RED)
        cv.text(round(p[0]) + 14, round(p[1]) - 14, f"CLOSEST {dist:.0f} M", RED, 2)
    # Scale bar (bottom left) and north arrow (top right): the grid's north, up.
    bar_m = _nice(span / 4)
    bar_px = bar_m / mpp
    x0, y0 = 20, MAP_H - 24
    cv.rect(x0, y0, x0 + round(bar_px), y0 + 6, BLACK)
    cv.rect(x0 + round(bar_px / 2), y0 + 1, x0 + round(bar_px), y0 + 5, WHITE)
    cv.text(x0, y0 - 18, f"{bar_m:g} M", BLACK, 2)
    ax, ay = WIDTH - 40, 20
    cv.line((ax, ay + 40), (ax, ay), BLACK, 3)
    cv.line((ax, ay), (ax - 10, ay + 14), BLACK, 3)
    cv.line((ax, ay), (ax + 10, ay + 14), BLACK, 3)
    cv.text(ax - 5, ay + 46, "N", BLACK, 2)
    # Caption.
    top = MAP_H + 10
    status = "NO BASE MAP"
    if base is not None:
        status = "BASE MAP" if pixels is not None else "BASE MAP UNAVAILABLE"
    lines = [
        f"{m.crime_reference}  {m.offender_id}  {m.confidence.replace('_', ' ')}  ({status})",
        f"WINDOW {_local(m.window[0], zone)} TO {_local(m.window[1], zone)}",
        (
            f"CLOSEST {m.closest[2]:.0f} M AT {_local(m.closest[3], zone)}"
            if m.closest
            else "NO CLOSEST APPROACH"
        )
        + f"  SCENE RADIUS {m.radius_m:.0f} M",
        "EVIDENCE SHA256 CHAIN HEAD",
        m.head,
    ]
    for i, text in enumerate(lines):
        cv.text(10, top + i * 26, (text if i == len(lines) - 1 else text.upper())[:74], BLACK, 2)
    chunks = {"evidence-head": m.head, "Software": "em-service scene map v1"}
    if base is not None:
        cv.text(10, top + len(lines) * 26, base_map_line(base).upper()[:148], BLACK, 1)
        chunks["base-map"] = base_map_chunk(base.provenance)
    return cv.png(chunks)


def base_map_chunk(provenance: dict[str, object]) -> str:
    """Return the ``base-map`` text chunk of a base map's provenance (canonical ASCII JSON)."""
    return json.dumps(provenance, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

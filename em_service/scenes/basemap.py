"""The optional base map under the evidence map image: XYZ Web-Mercator PNG tiles from the
force's own tile server (``EM_EVIDENCE_TILE_URL``), decoded in pure Python, resampled
nearest-neighbour onto the image's EPSG:27700 pixel grid and lightened (50 % white).

Off by default: a tile request tells the tile server where the scene is, so point it only at a
server the force runs. Any failure (HTTP error, timeout, too many tiles, a PNG this decoder does
not read) gives :class:`Unavailable` and the image is drawn without a base map; the export never
fails for it. What was used (URL template, zoom, each tile's coordinates and SHA-256) is
:attr:`BaseMap.provenance`, kept in the image's ``base-map`` text chunk and in the pack's
manifest, so a verifier can refetch the same tiles and redraw the same image.
"""

from __future__ import annotations

import hashlib
import math
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_TILES = 64
MAX_TILE_BYTES = 1 << 20
MAX_TILE_PX = 1024
MAX_ZOOM = 19
_HALF = 20037508.342789244  # half the Web-Mercator world, metres
_TILE_PX = 256  # the tile size the zoom is chosen for


@dataclass(frozen=True)
class TileSource:
    """Where tiles come from: ``url`` with ``{z}``, ``{x}``, ``{y}``; ``attribution`` for the
    caption; ``timeout_s`` for all the tiles of one image together."""

    url: str
    attribution: str = ""
    timeout_s: float = 5.0


@dataclass(frozen=True)
class BaseMap:
    """The lightened base map, ``height`` × ``width`` × 3 ``uint8``, and what it was made of."""

    pixels: np.ndarray
    attribution: str
    provenance: dict[str, Any]


@dataclass(frozen=True)
class Unavailable:
    """A configured base map that could not be drawn, and why (no coordinates)."""

    reason: str

    @property
    def provenance(self) -> dict[str, Any]:
        return {"status": "unavailable", "reason": self.reason}


class TileError(ValueError):
    """A tile that cannot be used."""


def decode_png(data: bytes) -> np.ndarray:
    """Return an 8-bit, non-interlaced greyscale, grey+alpha, RGB, RGBA or palette PNG as an
    ``h × w × 3`` ``uint8`` RGB array (alpha composited over white); raise :class:`TileError`
    for anything else or a malformed file."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise TileError("not a PNG")
    pos, ihdr, plte, trns, idat = 8, b"", b"", b"", []
    while pos + 12 <= len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if len(body) != n or pos + 12 + n > len(data):
            raise TileError("truncated chunk")
        if struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])[0] != zlib.crc32(kind + body):
            raise TileError("bad CRC")
        if kind == b"IHDR":
            ihdr = body
        elif kind == b"PLTE":
            plte = body
        elif kind == b"tRNS":
            trns = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + n
    else:
        raise TileError("no IEND")
    if len(ihdr) != 13 or not idat:
        raise TileError("no IHDR or IDAT")
    w, h, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", ihdr)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype)
    if channels is None or depth != 8 or comp or filt or interlace:
        raise TileError(f"unsupported PNG (colour type {ctype}, depth {depth}, interlace)")
    if not (0 < w <= MAX_TILE_PX and 0 < h <= MAX_TILE_PX):
        raise TileError("unsupported tile size")
    stride = w * channels
    want = h * (stride + 1)
    z = zlib.decompressobj()
    try:
        raw = z.decompress(b"".join(idat), want + 1)
    except zlib.error as exc:
        raise TileError(f"bad image data: {exc}") from exc
    if len(raw) != want:
        raise TileError("image data of the wrong length")
    img = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 1:  # Sub: a running sum per channel
            cur = np.cumsum(line.reshape(w, channels), axis=0).reshape(stride) & 0xFF
        elif ftype == 2:  # Up
            cur = (line + prev) & 0xFF
        elif ftype in (3, 4):  # Average, Paeth: each byte needs the one just decoded
            out, up, bs = bytearray(stride), prev.tolist(), line.tolist()
            for i in range(stride):
                left = out[i - channels] if i >= channels else 0
                if ftype == 3:
                    pred = (left + up[i]) >> 1
                else:
                    ul = up[i - channels] if i >= channels else 0
                    p = left + up[i] - ul
                    pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - ul)
                    pred = left if pa <= pb and pa <= pc else up[i] if pb <= pc else ul
                out[i] = (bs[i] + pred) & 0xFF
            cur = np.frombuffer(bytes(out), np.uint8).astype(np.int32)
        else:
            raise TileError(f"bad filter type {ftype}")
        img[y] = cur
        prev = cur
    px = img.reshape(h, w, channels)
    if ctype == 3:
        n = len(plte) // 3
        if len(plte) % 3 or n == 0 or int(px.max()) >= n:
            raise TileError("bad palette")
        pal = np.frombuffer(plte, np.uint8).reshape(n, 3)
        alpha = np.full(n, 255, np.uint8)
        alpha[: min(len(trns), n)] = np.frombuffer(trns[:n], np.uint8)
        idx = px[..., 0]
        rgb, a = pal[idx], alpha[idx]
    elif ctype in (0, 4):
        rgb = np.repeat(px[..., :1], 3, axis=2)
        a = px[..., 1] if ctype == 4 else None
    else:
        rgb = px[..., :3]
        a = px[..., 3] if ctype == 6 else None
    if a is None:
        return np.ascontiguousarray(rgb)
    a16 = a.astype(np.uint16)[..., None]
    return ((rgb.astype(np.uint16) * a16 + 255 * (255 - a16)) // 255).astype(np.uint8)


def _mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return Web-Mercator metres of WGS84 degrees."""
    lat = np.clip(lat, -85.05112878, 85.05112878)
    mx = np.radians(lon) * 6378137.0
    my = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * 6378137.0
    return mx, my


def choose_zoom(mpp: float, lat: float) -> int:
    """Return the zoom whose 256 px tiles' ground resolution at ``lat`` is nearest ``mpp``."""
    ground0 = 2 * _HALF / _TILE_PX * math.cos(math.radians(lat))
    return max(0, min(MAX_ZOOM, round(math.log2(ground0 / mpp))))


def fetch(
    source: TileSource,
    *,
    crs: str,
    centre: tuple[float, float],
    mpp: float,
    size: tuple[int, int],
) -> BaseMap | Unavailable:
    """Return the base map of a ``size`` = (width, height) px image centred on ``centre``
    (``crs`` metres) at ``mpp`` metres per pixel, or :class:`Unavailable`."""
    import httpx

    from geofences.projection import get_projector

    width, height = size
    cx, cy = centre
    xs = cx + (np.arange(width) + 0.5 - width / 2) * mpp
    ys = cy - (np.arange(height) + 0.5 - height / 2) * mpp
    gx, gy = np.meshgrid(xs, ys)
    lon, lat = get_projector(crs).inverse.transform(gx.ravel(), gy.ravel())
    mx, my = _mercator(np.asarray(lon), np.asarray(lat))
    zoom = choose_zoom(mpp, float(np.mean(lat)))
    while True:
        n = 2**zoom
        fx, fy = (mx + _HALF) / (2 * _HALF) * n, (_HALF - my) / (2 * _HALF) * n
        tx, ty = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
        tx %= n
        ty = np.clip(ty, 0, n - 1)
        keys, inverse = np.unique(tx * n + ty, return_inverse=True)
        if len(keys) <= MAX_TILES or zoom == 0:
            break
        zoom -= 1
    if len(keys) > MAX_TILES:
        return Unavailable("too many tiles")
    tiles: list[np.ndarray] = []
    listed: list[dict[str, Any]] = []
    deadline = time.monotonic() + source.timeout_s
    try:
        with httpx.Client(follow_redirects=False) as client:
            for key in keys.tolist():
                x, y = divmod(key, n)
                left = deadline - time.monotonic()
                if left <= 0:
                    return Unavailable("tile server too slow")
                url = source.url.format(z=zoom, x=x, y=y)
                with client.stream("GET", url, timeout=left) as resp:
                    if resp.status_code != 200:
                        return Unavailable(f"tile server answered HTTP {resp.status_code}")
                    body = b""
                    for part in resp.iter_bytes():
                        body += part
                        if len(body) > MAX_TILE_BYTES:
                            return Unavailable("tile too large")
                tile = decode_png(body)
                if (tiles and tile.shape != tiles[0].shape) or tile.shape[0] != tile.shape[1]:
                    return Unavailable("tiles of different or non-square sizes")
                tiles.append(tile)
                listed.append({"x": x, "y": y, "sha256": hashlib.sha256(body).hexdigest()})
    except httpx.HTTPError as exc:
        return Unavailable(f"tile server unreachable ({type(exc).__name__})")
    except TileError as exc:
        return Unavailable(f"unreadable tile: {exc}")
    ts = tiles[0].shape[0]
    px = np.clip(((fx - np.floor(fx)) * ts).astype(np.int64), 0, ts - 1)
    py = np.clip(((fy - np.floor(fy)) * ts).astype(np.int64), 0, ts - 1)
    stack = np.stack(tiles)
    img = stack[inverse.ravel(), py, px].reshape(height, width, 3)
    light = ((img.astype(np.uint16) + 255) // 2).astype(np.uint8)  # 50 % white
    provenance = {
        "status": "drawn",
        "url_template": source.url,
        "attribution": source.attribution,
        "zoom": zoom,
        "tile_px": ts,
        "resampling": "nearest, blended 50% with white",
        "tiles": listed,
    }
    return BaseMap(light, source.attribution, provenance)

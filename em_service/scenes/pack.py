"""The evidence pack of one match: a ZIP of the GeoJSON and CSV exports, the map image (PNG)
and ``MANIFEST.json``, which hash-chains every file in order (the same SHA-256 chain as the
exports' records: ``chain_i`` = SHA-256(``chain_{i-1}`` ‖ ``sha256_i``)). Its head is written to
the audit log at export. ``em-service evidence verify PACK.zip`` checks every file's hash and
chain, the two exports' own record chains, that the PNG is well formed and that the hash in its
caption (kept in its ``evidence-head`` text chunk) is the GeoJSON export's head.

With a base map configured (``EM_EVIDENCE_TILE_URL``) the manifest's ``base_map`` says what was
drawn under the overlays (URL template, zoom, each tile's x, y and SHA-256) or why none could be;
the same record is in the PNG's ``base-map`` text chunk (covered by the PNG's hash), and verify
checks that the two agree. Without one, pack and image are exactly as before.

The ZIP is deterministic (stored entries, fixed timestamps, fixed order), as is the image.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from datetime import datetime
from typing import TYPE_CHECKING

from em_service.scenes import evidence, mapimage

if TYPE_CHECKING:
    from em_service.scenes.basemap import BaseMap, TileSource, Unavailable
    from em_service.scenes.store import SceneMatchRow, SceneRow

log = logging.getLogger(__name__)

FORMAT = "em-service evidence pack v1"
MANIFEST = "MANIFEST.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def map_input(
    scene: SceneRow, row: SceneMatchRow, head: str, crs: str, tz: str
) -> mapimage.MapInput:
    """Return what the map image of ``row`` draws, projected to ``crs`` metres."""
    from em_service.scenes import store as scene_store
    from em_service.scenes.matching import Match
    from geofences.projection import get_projector

    proj = get_projector(crs)

    def xy(lon: float, lat: float) -> tuple[float, float]:
        x, y = proj.to_xy(lon, lat)
        return float(x), float(y)

    _kind, found, _cfg = scene_store.load_evidence(row)
    fixes = [
        mapimage.Fix(*xy(f.lon, f.lat), f.ts_s, f.in_window) for f in (found.fixes if found else ())
    ]
    at = {(f.device_id, f.ts_s): f for f in (found.fixes if found else ())}
    segments = []
    for s in found.segments if isinstance(found, Match) else ():
        ends = [at.get((s.device_id, t)) for t in (s.start_ts_s, s.end_ts_s)]
        pts = [xy(e.lon, e.lat) for e in ends[:1] if e] + [xy(s.closest_lon, s.closest_lat)]
        segments.append(tuple(pts + [xy(e.lon, e.lat) for e in ends[1:] if e]))
    closest = None
    if row.closest_lat is not None and row.closest_lon is not None:
        closest = (*xy(row.closest_lon, row.closest_lat), row.closest_m, row.closest_at.timestamp())
    return mapimage.MapInput(
        crime_reference=scene.crime_reference,
        offender_id=row.offender_id,
        confidence=row.confidence,
        scene_xy=xy(scene.lon, scene.lat),
        radius_m=scene.radius_m,
        window=(scene.window_start, scene.window_end),
        fixes=fixes,
        segments=segments,
        closest=closest,
        head=head,
        tz=tz,
    )


def _base_map(drawn: mapimage.MapInput, tiles: TileSource, crs: str) -> BaseMap | Unavailable:
    """Return the base map of the image, or why there is none: never raises."""
    from em_service.scenes import basemap

    cx, cy, mpp, _span = mapimage.frame(drawn)
    try:
        base = basemap.fetch(
            tiles, crs=crs, centre=(cx, cy), mpp=mpp, size=(mapimage.WIDTH, mapimage.MAP_H)
        )
    except Exception as exc:  # an export never fails for its base map
        base = basemap.Unavailable(f"base map failed ({type(exc).__name__})")
    if isinstance(base, basemap.Unavailable):
        log.warning("evidence image without its base map: %s", base.reason)  # no coordinates
    return base


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


def build(
    scene: SceneRow,
    row: SceneMatchRow,
    *,
    actor: str,
    exported_at: datetime,
    crs: str,
    tz: str = "Europe/London",
    tiles: TileSource | None = None,
) -> tuple[bytes, str, str]:
    """Return (ZIP bytes, pack head, GeoJSON records head) of one match's evidence pack;
    ``tiles``: where the image's base map comes from (None: no base map)."""
    records = evidence.build_records(scene, row, actor=actor, exported_at=exported_at, tz=tz)
    geojson, records_head = evidence.to_geojson(records)
    csv_data, _ = evidence.to_csv(records)
    drawn = map_input(scene, row, records_head, crs, tz)
    base = None if tiles is None else _base_map(drawn, tiles, crs)
    png = mapimage.render(drawn, base)
    stem = f"evidence-{scene.scene_id}-{row.offender_id}"
    files = [
        (f"{stem}.geojson", geojson),
        (f"{stem}.csv", csv_data),
        (f"map-{scene.scene_id}-{row.offender_id}.png", png),
    ]
    listed, prev = [], evidence.GENESIS
    for name, data in files:
        sha = evidence._sha(data)
        prev = evidence._chain(prev, sha)
        listed.append({"name": name, "sha256": sha, "chain_sha256": prev})
    manifest = {
        "format": FORMAT,
        "algorithm": evidence.ALGORITHM,
        "scene_id": scene.scene_id,
        "offender_id": row.offender_id,
        "purpose": scene.crime_reference,
        "exported_by": actor,
        "records_head": records_head,
        "files": listed,
        "head": prev,
        "verify": "em-service evidence verify FILE.zip",
    }
    if base is not None:
        manifest["base_map"] = base.provenance
    body = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    return _zip([*files, (MANIFEST, body)]), prev, records_head


def verify(data: bytes) -> evidence.Verification:
    """Check a pack: every file against the manifest's chain, the exports' own chains, the PNG."""
    result = evidence.Verification(format="pack")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            contents = {i.filename: z.read(i) for i in z.infolist()}
        manifest = json.loads(contents.pop(MANIFEST))
        listed = [(f["name"], f["sha256"], f["chain_sha256"]) for f in manifest["files"]]
        records_head = manifest["records_head"]
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:
        result.problems.append(f"not an evidence pack: {exc}")
        return result
    if sorted(contents) != sorted(n for n, _s, _c in listed):
        result.problems.append("files added to or removed from the pack")
    prev = evidence.GENESIS
    for name, sha, chain in listed:
        got = contents.get(name, b"")
        prev = evidence._chain(prev, evidence._sha(got))
        if evidence._sha(got) != sha:
            result.problems.append(f"{name}: contents do not match its sha256 (altered)")
        elif prev != chain:
            result.problems.append(f"{name}: chain_sha256 does not follow the file before")
        if name.endswith((".geojson", ".csv")):
            inner = evidence.verify(got)
            result.problems += [f"{name}: {p}" for p in inner.problems]
            if name.endswith(".geojson") and inner.ok and inner.head != records_head:
                result.problems.append(f"{name}: its head is not the manifest's records_head")
            result.records += inner.records
        elif name.endswith(".png"):
            try:
                caption = mapimage.png_text(got).get("evidence-head")
            except ValueError as exc:
                result.problems.append(f"{name}: {exc}")
                continue
            if caption != records_head:
                result.problems.append(f"{name}: the hash in its caption is not the records head")
            chunk = mapimage.png_text(got).get("base-map")
            listed_base = manifest.get("base_map")
            if (chunk, listed_base) != (None, None) and (
                listed_base is None or chunk != mapimage.base_map_chunk(listed_base)
            ):
                result.problems.append(f"{name}: its base map is not the manifest's base_map")
    if prev != manifest.get("head"):
        result.problems.append("the manifest's head does not follow its files")
    result.head = prev
    return result

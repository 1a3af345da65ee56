"""Readings as message bytes, byte-identical to ``codec.encode`` of the contract structs.

GPS fixes (millions) are formatted column-wise: each numeric column goes through msgspec once
(``encode(list)``), so every number is written exactly as msgspec writes that float or int (NaN
becomes ``null``), and rows are assembled with one ``%`` per row. Alcohol readings and device
events (few) are built as ``AlcoholReading``/``DeviceEvent`` structs and encoded by the codec.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from em_service.contracts import AlcoholReading, DeviceEvent
from em_service.contracts.codec import encode

if TYPE_CHECKING:
    from simulator.engine import Simulation

_GPS = (
    b'{"type":"gps","device_id":"%s","ts":"%s","lat":%s,"lon":%s,"accuracy_m":%s,"seq":%s,'
    b'"speed_mps":%s,"heading_deg":%s,"battery_pct":%s}'
)
_enc = msgspec.json.Encoder()


def _column(values: np.ndarray) -> list[bytes]:
    if len(values) == 0:
        return []
    return _enc.encode(values.tolist())[1:-1].split(b",")


def ts_text(ts_s: np.ndarray) -> list[bytes]:
    """Return RFC 3339 UTC bytes (``…Z``) for whole epoch seconds, as msgspec writes them."""
    uniq, inverse = np.unique(ts_s, return_inverse=True)
    text = [
        datetime.fromtimestamp(int(t), UTC).isoformat().replace("+00:00", "Z").encode()
        for t in uniq
    ]
    return [text[i] for i in inverse.tolist()]


def gps_lines(sim: Simulation, idx: np.ndarray) -> list[bytes]:
    """Return the GPS messages of fixes ``idx`` (in that order)."""
    f = sim.fixes
    ids = [p.gps_device_id.encode() for p in sim.persons]
    dev = [ids[d] for d in f.dev[idx].tolist()]
    cols = (
        dev,
        ts_text(f.ts_s[idx]),
        _column(f.lat[idx]),
        _column(f.lon[idx]),
        _column(f.accuracy_m[idx]),
        _column(sim.fix_seq[idx]),
        _column(f.speed_mps[idx]),
        _column(f.heading_deg[idx]),
        _column(f.battery_pct[idx]),
    )
    return [_GPS % row for row in zip(*cols, strict=True)]


def alcohol_message(sim: Simulation, k: int) -> AlcoholReading:
    """Return alcohol reading ``k`` as a contract struct."""
    a = sim.alcohol
    device = sim.persons[int(a.dev[k])].alcohol_device_id
    assert device is not None
    return AlcoholReading(
        device_id=device,
        ts=datetime.fromtimestamp(int(a.ts_s[k]), UTC),
        tac_g_dl=float(a.tac_g_dl[k]),
        skin_temp_c=float(a.skin_temp_c[k]),
        ir_value=float(a.ir_value[k]),
        ir_contact=bool(a.ir_contact[k]),
        seq=int(sim.alcohol_seq[k]),
    )


def event_message(sim: Simulation, k: int) -> DeviceEvent:
    """Return device event ``k`` as a contract struct."""
    e = sim.events
    return DeviceEvent(
        device_id=sim.persons[int(e.dev[k])].gps_device_id,
        ts=datetime.fromtimestamp(int(e.ts_s[k]), UTC),
        event=e.kind[k],  # type: ignore[arg-type]
        detail=e.detail[k],
        seq=int(sim.event_seq[k]),
    )


def reading_lines(sim: Simulation, kind: np.ndarray, index: np.ndarray) -> list[bytes]:
    """Return the messages of readings ``(kind, index)`` in the given order."""
    gps = kind == 0
    out = gps_lines(sim, index[gps]) if gps.any() else []
    others = np.flatnonzero(~gps).tolist()
    if not others:
        return out
    for pos in others:  # ascending: each insert lands at its final position
        k, i = int(kind[pos]), int(index[pos])
        msg = alcohol_message(sim, i) if k == 1 else event_message(sim, i)
        out.insert(pos, encode(msg))
    return out


def reading_keys(sim: Simulation, kind: np.ndarray, index: np.ndarray) -> list[bytes]:
    """Return the Kafka keys (device ids) of readings ``(kind, index)``."""
    gps_ids = [p.gps_device_id.encode() for p in sim.persons]
    alc_ids = [(p.alcohol_device_id or "").encode() for p in sim.persons]
    dev = np.empty(len(kind), np.int64)
    for k, table in enumerate((sim.fixes, sim.alcohol, sim.events)):
        m = kind == k
        dev[m] = table.dev[index[m]]
    return [
        alc_ids[d] if k == 1 else gps_ids[d]
        for k, d in zip(kind.tolist(), dev.tolist(), strict=True)
    ]


def delivered_s(sim: Simulation, kind: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Return the delivery instants (epoch seconds) of readings ``(kind, index)``."""
    out = np.empty(len(kind))
    for k, table in enumerate((sim.fixes, sim.alcohol, sim.events)):
        m = kind == k
        out[m] = table.delivered_s[index[m]]
    return out

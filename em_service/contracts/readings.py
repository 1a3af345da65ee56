"""Tag readings on ``em.readings`` (key = device_id): a tagged union on the field ``type``."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from msgspec import Meta, Struct

from em_service.contracts.types import AwareDatetime, Ident, Latitude, Longitude

#: Device events that the service understands; anything else is a schema violation
#: (add new kinds here and regenerate the schemas).
DeviceEventKind = Literal[
    "strap_tamper",
    "strap_restored",
    "battery_low",
    "charging_started",
    "charging_stopped",
    "device_fault",
    "heartbeat",
]
DEVICE_EVENTS: tuple[str, ...] = get_args(DeviceEventKind)

Seq = Annotated[int, Meta(ge=0, le=2**63 - 1, description="Device sequence number, if any")]


class GpsReading(Struct, tag="gps", tag_field="type", forbid_unknown_fields=True, frozen=True):
    """A GPS fix. ``accuracy_m`` is the device's horizontal accuracy (1-sigma-ish radius), metres."""

    device_id: Ident
    ts: AwareDatetime
    lat: Latitude
    lon: Longitude
    accuracy_m: Annotated[float, Meta(ge=0.0, le=100_000.0, description="Horizontal accuracy, m")]
    seq: Seq | None = None
    speed_mps: Annotated[float, Meta(ge=0.0, le=150.0, description="Ground speed, m/s")] | None = (
        None
    )
    heading_deg: Annotated[float, Meta(ge=0.0, lt=360.0, description="Heading, degrees")] | None = (
        None
    )
    battery_pct: Annotated[float, Meta(ge=0.0, le=100.0, description="Battery, percent")] | None = (
        None
    )


class AlcoholReading(
    Struct, tag="alcohol", tag_field="type", forbid_unknown_fields=True, frozen=True
):
    """A transdermal alcohol reading (SCRAM-style, about every 30 min).

    ``tac_g_dl`` is the transdermal alcohol concentration in g/dL; ``skin_temp_c`` in °C;
    ``ir_value`` the unitless IR/proximity reflectance (bracelet against skin), and
    ``ir_contact`` the device's own flag for skin contact, where it reports one.
    """

    device_id: Ident
    ts: AwareDatetime
    tac_g_dl: Annotated[float, Meta(ge=0.0, le=1.0, description="Transdermal alcohol, g/dL")]
    skin_temp_c: Annotated[float, Meta(ge=-40.0, le=60.0, description="Skin temperature, °C")]
    ir_value: Annotated[float, Meta(ge=0.0, le=100_000.0, description="IR proximity value")]
    ir_contact: bool | None = None
    seq: Seq | None = None


class DeviceEvent(Struct, tag="event", tag_field="type", forbid_unknown_fields=True, frozen=True):
    """A device event: strap tamper, battery, charging, fault, or a ``heartbeat`` (the tag is alive;
    it may carry battery and signal, and says nothing about the position)."""

    device_id: Ident
    ts: AwareDatetime
    event: DeviceEventKind
    detail: Annotated[str, Meta(max_length=500)] | None = None
    seq: Seq | None = None
    battery_pct: Annotated[float, Meta(ge=0.0, le=100.0, description="Battery, percent")] | None = (
        None
    )
    signal_dbm: (
        Annotated[float, Meta(ge=-200.0, le=0.0, description="Cellular signal, dBm")] | None
    ) = None


Reading = GpsReading | AlcoholReading | DeviceEvent


def reading_type(reading: Reading) -> str:
    """Return the wire tag of ``reading``: ``gps``, ``alcohol`` or ``event``."""
    return type(reading).__struct_config__.tag  # type: ignore[return-value]

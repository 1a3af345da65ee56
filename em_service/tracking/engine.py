"""The tracking engine: one device's state + one reading (or tick) → new state + alerts.

Pure and synchronous (no clock reads): the loop passes ``now``, load and store
:class:`DeviceState`, and send the alerts. Rules live in :mod:`em_service.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import msgspec
import numpy as np
from msgspec import Struct

from em_service.conditions.registry import ConditionsRegistry
from em_service.contracts import AlcoholReading, Alert, DeviceEvent, GpsReading, Reading
from em_service.rules import alcohol, device, silence, zones
from em_service.scenes.live import LiveState
from em_service.settings import Settings
from geofences import ZoneVerdict


class DeviceState(Struct):
    """Everything the rules remember about one device (a changelogged table value)."""

    offender_id: str | None = None
    is_gps: bool = False
    silence: silence.SilenceState = msgspec.field(default_factory=silence.SilenceState)
    alcohol: alcohol.AlcoholState = msgspec.field(default_factory=alcohol.AlcoholState)
    zones: zones.ZoneRulesState = msgspec.field(default_factory=zones.ZoneRulesState)
    scenes: LiveState = msgspec.field(default_factory=LiveState)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DeviceState)


def dump_state(state: DeviceState) -> bytes:
    """Serialise a device state for the table."""
    return _encoder.encode(state)


def load_state(raw: bytes | None) -> DeviceState:
    """Deserialise a device state (a new one for None)."""
    return _decoder.decode(raw) if raw else DeviceState()


@dataclass
class Outcome:
    """What processing one reading produced."""

    alerts: list[Alert] = field(default_factory=list)
    unknown_device: bool = False


@dataclass
class Engine:
    """Applies every rule to a device's readings; holds no per-device state itself."""

    registry: ConditionsRegistry
    settings: Settings
    alcohol_cfg: alcohol.AlcoholConfig = field(default_factory=alcohol.AlcoholConfig)

    def on_reading(
        self,
        state: DeviceState,
        reading: Reading,
        *,
        now: datetime,
        stream_now: datetime | None = None,
        verdicts: list[ZoneVerdict] | None = None,
    ) -> Outcome:
        """Apply ``reading`` to ``state`` (mutated) and return the alerts it raises.

        ``now`` is the wall clock (``detected_at``); ``stream_now`` the rule clock (default
        ``now``): a reading older than it by more than ``late_after_s``, or older than the
        device's newest reading, raises its alerts with ``late: true``. ``verdicts`` are the
        fix's zone verdicts from :meth:`evaluate_batch`, if any.
        """
        offender_id = self.registry.offender_for(reading.device_id)
        if offender_id is None:
            return Outcome(unknown_device=True)
        if state.offender_id not in (None, offender_id):
            state.zones = zones.ZoneRulesState()  # the tag moved to someone else: start afresh
        state.offender_id = offender_id
        state.is_gps = state.is_gps or isinstance(reading, GpsReading)
        version = self.registry.at(offender_id, reading.ts)
        lag_s = ((stream_now or now) - reading.ts).total_seconds()
        late = lag_s > self.settings.late_after_s or (
            state.silence.last_ts is not None and reading.ts < state.silence.last_ts
        )
        out = Outcome()
        if version is None:  # conditions not in force at that time: end silences, check nothing
            out.alerts += silence.on_reading(
                state.silence, offender_id, reading.device_id, reading.ts, now=now
            )
            return out
        last = state.silence.last_ts
        held = version  # a silence is judged by the conditions in force when the tag was last heard
        if last is not None and last.timestamp() < version.effective_s:
            held = self.registry.at(offender_id, last) or version
        out.alerts += silence.on_reading(
            state.silence,
            offender_id,
            reading.device_id,
            reading.ts,
            now=now,
            interval_s=held.conditions.gps_interval_s if state.is_gps else None,
            buffer_s=self.settings.silence_buffer_s,
            curfews=lambda t0, t1: zones.curfew_windows_from(held, t0, t1),
        )
        if isinstance(reading, GpsReading):
            out.alerts += zones.on_fix(
                state.zones,
                version,
                offender_id,
                reading,
                now=now,
                late=late,
                settings=self.settings,
                verdicts=verdicts,
            )
        elif isinstance(reading, AlcoholReading):
            if version.conditions.alcohol_monitoring:
                out.alerts += alcohol.step(
                    state.alcohol, reading, offender_id, now=now, late=late, cfg=self.alcohol_cfg
                )
        elif isinstance(reading, DeviceEvent):
            out.alerts += device.device_event_alerts(
                reading, offender_id, now=now, late=late, alert_on_info=self.settings.alert_on_info
            )
        return out

    def evaluate_batch(
        self,
        readings: list[Reading | None],
        xy: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> dict[int, list[ZoneVerdict]]:
        """Return zone verdicts of the GPS fixes among ``readings`` (by position), vectorised.

        Fixes whose conditions in force are not their wearer's newest version are left out
        (:meth:`on_reading` evaluates those one by one). ``xy``: the readings' projected metres
        by position, if the caller has them (else the fixes are projected here).
        """
        index, latest = self.registry.batch_index()
        offender_for, at = self.registry.offender_for, self.registry.at  # at: newest first
        rows: list[int] = []
        owners: list[str] = []
        times: list[float] = []
        for i, r in enumerate(readings):
            if not isinstance(r, GpsReading):
                continue
            offender = offender_for(r.device_id)
            version = latest.get(offender) if offender else None
            if version is None:
                continue
            if at(offender, r.ts) is version:
                rows.append(i)
                owners.append(offender)
                times.append(r.ts.timestamp())
        if not rows:
            return {}
        n = len(rows)
        fixes = [readings[i] for i in rows]
        if xy is not None:
            where = {"x": xy[0][rows], "y": xy[1][rows]}
        else:
            where = {
                "lon": np.fromiter((f.lon for f in fixes), np.float64, n),
                "lat": np.fromiter((f.lat for f in fixes), np.float64, n),
            }
        batch = index.evaluate(
            index.owner_indices(owners),
            np.array(times, np.float64),
            accuracy_m=np.fromiter((f.accuracy_m for f in fixes), np.float64, n),
            **where,
        )
        return dict(zip(rows, batch.all_zone_verdicts(), strict=True))

    def on_tick(
        self,
        state: DeviceState,
        device_id: str,
        *,
        now: datetime,
        detected_at: datetime,
        check_silence: bool = True,
    ) -> list[Alert]:
        """Time passes: silence checks, reorder flushes, curfew window ends.

        ``now`` is the rule clock (wall or event time); ``detected_at`` the wall clock.
        """
        if state.offender_id is None or state.silence.last_ts is None:
            return []
        version = self.registry.at(state.offender_id, now) or self.registry.at(
            state.offender_id, state.silence.last_ts
        )
        if version is None:
            return []
        alerts = zones.on_tick(
            state.zones, version, state.offender_id, device_id, now=now, settings=self.settings
        )
        if (
            state.is_gps and check_silence
        ):  # silence is a GPS-tag rule; alcohol tags have missed-readings
            held = self.registry.at(state.offender_id, state.silence.last_ts) or version
            alerts += silence.check(
                state.silence,
                state.offender_id,
                device_id,
                now=now,
                interval_s=held.conditions.gps_interval_s,
                buffer_s=self.settings.silence_buffer_s,
                curfews=lambda t0, t1: zones.curfew_windows_from(held, t0, t1),
            )
        return [msgspec.structs.replace(a, detected_at=detected_at) for a in alerts]

    @staticmethod
    def open_episode_kinds(state: DeviceState) -> list[str]:
        """Return the kind (exclusion, inclusion, curfew) of each open breach episode."""
        return zones.open_kinds(state.zones)

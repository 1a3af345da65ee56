"""The tracking engine: one device's state + one reading (or tick) → new state + alerts.

Pure and synchronous (no clock reads): the loop passes ``now``, load and store
:class:`DeviceState`, and send the alerts. Rules live in :mod:`em_service.rules`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
import numpy as np
from msgspec import Struct

from em_service.conditions.registry import ConditionsRegistry, Version
from em_service.contracts import AlcoholReading, Alert, DeviceEvent, GpsReading, Reading
from em_service.rules import (
    alcohol,
    attendance,
    device,
    location,
    monitoring,
    silence,
    suspensions,
    victims,
    zones,
)
from em_service.scenes.live import LiveState
from em_service.settings import Settings
from geofences import ZoneVerdict
from geofences.projection import get_projector


class DeviceState(Struct):
    """Everything the rules remember about one device (a changelogged table value)."""

    offender_id: str | None = None
    is_gps: bool = False
    silence: silence.SilenceState = msgspec.field(default_factory=silence.SilenceState)
    alcohol: alcohol.AlcoholState = msgspec.field(default_factory=alcohol.AlcoholState)
    zones: zones.ZoneRulesState = msgspec.field(default_factory=zones.ZoneRulesState)
    scenes: LiveState = msgspec.field(default_factory=LiveState)
    attendance: attendance.AttendanceState = msgspec.field(
        default_factory=attendance.AttendanceState
    )
    location: location.LocationState = msgspec.field(default_factory=location.LocationState)
    paused: bool = False  # monitoring was suspended or ended at the last reading or tick
    suppressed: suspensions.SuppressionState = msgspec.field(
        default_factory=suspensions.SuppressionState
    )
    victims: victims.VictimRulesState | None = None  # only for people with a victim protection


def _marker(version: Version) -> float:
    """A JSON-safe mark of a conditions version (its effective time; -1 for "always")."""
    return version.effective_s if math.isfinite(version.effective_s) else -1.0


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
    paused: bool = False  # monitoring not active at the reading's time: no other rule applies


@dataclass
class Engine:
    """Applies every rule to a device's readings; holds no per-device state itself."""

    registry: ConditionsRegistry
    settings: Settings
    alcohol_cfg: alcohol.AlcoholConfig = field(default_factory=alcohol.AlcoholConfig)
    #: Victims' recent fixes (followed from the victim topic by every worker).
    positions: victims.VictimPositions = field(default_factory=victims.VictimPositions)

    def on_reading(
        self,
        state: DeviceState,
        reading: Reading,
        *,
        now: datetime,
        stream_now: datetime | None = None,
        verdicts: list[ZoneVerdict] | None = None,
        xy: tuple[float, float] | None = None,
    ) -> Outcome:
        """Apply ``reading`` to ``state`` (mutated) and return the alerts it raises.

        ``now`` is the wall clock (``detected_at``); ``stream_now`` the rule clock (default
        ``now``): a reading older than it by more than ``late_after_s``, or older than the
        device's newest reading, raises its alerts with ``late: true``. ``verdicts`` are the
        fix's zone verdicts from :meth:`evaluate_batch`, if any; ``xy`` a fix's projected
        metres, if known (the victim rule projects it otherwise).
        """
        found = self.registry.wearer(reading.device_id, reading.ts)
        if found is None:
            return Outcome(unknown_device=True)
        offender_id, version = found
        if state.offender_id not in (None, offender_id):
            state.zones = zones.ZoneRulesState()  # the tag moved to someone else: start afresh
            state.suppressed = suspensions.SuppressionState()
            state.victims = None
        state.offender_id = offender_id
        state.is_gps = state.is_gps or isinstance(reading, GpsReading)
        lag_s = ((stream_now or now) - reading.ts).total_seconds()
        late = lag_s > self.settings.late_after_s or (
            state.silence.last_ts is not None and reading.ts < state.silence.last_ts
        )
        out = Outcome()
        if version is not None:
            out.alerts += self._unseen_pause(
                state, version, offender_id, reading.device_id, reading.ts, now
            )
        if version is None:  # conditions not in force at that time: end silences, check nothing
            out.alerts += silence.on_reading(
                state.silence, offender_id, reading.device_id, reading.ts, now=now
            )
            return out
        status = (
            "active"
            if version.conditions.monitoring.status == "active"
            else monitoring.status_at(version.conditions, reading.ts)
        )
        if status != "active":
            paused = self._paused_reading(state, version, offender_id, reading, status, now, late)
            paused.alerts[:0] = out.alerts  # what the pause's own start raised
            return paused
        if state.paused:
            self._resume(state, _resumed_at(version, reading.ts))
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
        gap_s = held.conditions.gps_interval_s + self.settings.silence_buffer_s
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
            if version.conditions.suspensions or state.suppressed.open:
                out.alerts += suspensions.follow(
                    state.suppressed,
                    out.alerts,
                    version.conditions.suspensions,
                    at=reading.ts,
                    now=now,
                    late=late,
                )
            if version.conditions.victims or state.victims is not None:
                out.alerts += self._victims(state, version, offender_id, reading, xy, now, late)
            appts = version.compiled.appointments
            if appts is not None or state.attendance.since_s is None:
                out.alerts += self._attendance(state, version, offender_id, reading, now, late)
            if reading.accuracy_m <= version.compiled.max_accuracy_m:
                loc, fix_s = state.location, reading.ts.timestamp()
                if loc.open_id is not None or loc.last_fix_s is None:
                    out.alerts += location.on_fix(
                        state.location, offender_id, reading.device_id, reading.ts, now=now
                    )
                elif fix_s > loc.last_fix_s:
                    loc.last_fix_s = fix_s  # the hot path: just move on
            else:
                out.alerts += self._no_fix(state, held, offender_id, reading, gap_s, now, late)
        elif isinstance(reading, AlcoholReading):
            if version.conditions.alcohol_monitoring:
                out.alerts += alcohol.step(
                    state.alcohol, reading, offender_id, now=now, late=late, cfg=self.alcohol_cfg
                )
        elif isinstance(reading, DeviceEvent):
            out.alerts += device.device_event_alerts(
                reading, offender_id, now=now, late=late, alert_on_info=self.settings.alert_on_info
            )
            if state.is_gps:
                out.alerts += self._no_fix(state, held, offender_id, reading, gap_s, now, late)
        return out

    def _victims(
        self,
        state: DeviceState,
        version: Version,
        offender_id: str,
        fix: GpsReading,
        xy: tuple[float, float] | None,
        now: datetime,
        late: bool,
    ) -> list[Alert]:
        """The victim-proximity rule (only people with a protection, or who had one, get here)."""
        if state.victims is None:
            state.victims = victims.VictimRulesState()
        if xy is None:
            x, y = get_projector(self.registry.crs).to_xy(fix.lon, fix.lat)
            xy = (float(x), float(y))
        alerts = victims.on_fix(
            state.victims,
            version,
            offender_id,
            fix,
            xy,
            self.positions,
            now=now,
            settings=self.settings,
            late=late,
        )
        if not version.conditions.victims and not state.victims.episodes:
            state.victims = None  # protection lifted and nothing left open: back to no cost
        return alerts

    def _no_fix(
        self,
        state: DeviceState,
        held: Version,
        offender_id: str,
        reading: Reading,
        gap_s: float,
        now: datetime,
        late: bool,
    ) -> list[Alert]:
        """A contact without a usable fix: the location-failure rule."""
        return location.on_contact(
            state.location,
            offender_id,
            reading.device_id,
            reading.ts,
            now=now,
            threshold_s=gap_s,
            curfews=lambda t0, t1: zones.curfew_windows_from(held, t0, t1),
            late=late,
        )

    def _active_at(self, offender_id: str) -> Callable[[float], bool]:
        def active(ts_s: float) -> bool:
            t = datetime.fromtimestamp(ts_s, UTC)
            v = self.registry.at(offender_id, t)
            return v is not None and monitoring.status_at(v.conditions, t) == "active"

        return active

    def _attendance(
        self,
        state: DeviceState,
        version: Version,
        offender_id: str,
        fix: GpsReading,
        now: datetime,
        late: bool,
    ) -> list[Alert]:
        if state.attendance.version_s != _marker(version):
            state.attendance.version_s = _marker(version)
            attendance.conditions_changed(state.attendance)
        return attendance.on_fix(
            state.attendance,
            version.compiled.appointments,
            offender_id,
            fix,
            now=now,
            gap_s=version.conditions.gps_interval_s + self.settings.silence_buffer_s,
            late=late,
            active=self._active_at(offender_id),
        )

    def _paused_reading(
        self,
        state: DeviceState,
        version: Version,
        offender_id: str,
        reading: Reading,
        status: str,
        now: datetime,
        late: bool,
    ) -> Outcome:
        """Monitoring is suspended or ended at the reading's time: close what is open, note the
        contact, and let only a strap tamper through (while suspended)."""
        out = Outcome(paused=True)
        out.alerts += self._pause(state, version, offender_id, reading.device_id, reading.ts, now)
        if state.silence.last_ts is None or reading.ts > state.silence.last_ts:
            state.silence.last_ts = reading.ts
        if isinstance(reading, DeviceEvent):
            found = device.device_event_alerts(reading, offender_id, now=now, late=late)
            out.alerts += monitoring.let_through(status, found)
        return out

    def _unseen_pause(
        self,
        state: DeviceState,
        version: Version,
        offender_id: str,
        device_id: str,
        upto: datetime,
        now: datetime,
    ) -> list[Alert]:
        """Apply, at its own times, a pause that began after the device was last heard and
        before ``upto`` but that no reading or tick saw begin (the rule clock jumped over its
        start, or over all of it): a silence overdue before the pause began is raised, the
        pause closes what is open at its start, and one that has ended resumes at its end.

        Without this, what a pause did depended on whether a timer tick happened to fall in
        it: a tag silent from just before custody alerted on return (the silence spanned the
        custody) or did not (a tick in the custody had reset the rules).
        """
        m = version.conditions.monitoring
        last = state.silence.last_ts
        if m.status == "active" or m.from_ is None or state.paused or last is None:
            return []
        if not last < m.from_ <= upto:
            return []
        alerts: list[Alert] = []
        if state.is_gps:
            held = self.registry.at(offender_id, last) or version
            alerts += silence.check(
                state.silence,
                offender_id,
                device_id,
                now=m.from_,
                interval_s=held.conditions.gps_interval_s,
                buffer_s=self.settings.silence_buffer_s,
                curfews=lambda t0, t1: zones.curfew_windows_from(held, t0, t1),
            )
            for a in alerts:
                a.detected_at = now
        alerts += self._pause(state, version, offender_id, device_id, m.from_, now)
        if m.status == "suspended" and m.until is not None and m.until <= upto:
            self._resume(state, m.until)
        return alerts

    def _pause(
        self,
        state: DeviceState,
        version: Version,
        offender_id: str,
        device_id: str,
        at: datetime,
        now: datetime,
    ) -> list[Alert]:
        """Enter a pause (once): end open silence and location alerts, close zone episodes."""
        if state.paused:
            return []
        state.paused = True
        alerts = zones._retire_missing(
            state.zones, frozenset(), version, offender_id, device_id, now, self.settings, at=at
        )
        last = state.silence.last_ts or at
        for o in state.silence.open:
            alerts.append(
                silence._alert(
                    f"{o.type}_ended",
                    "info",
                    offender_id,
                    device_id,
                    o.start or last,
                    at,
                    now,
                    o.curfew_id,
                    ref=o.alert_id,
                    reason="monitoring_suspended",
                )
            )
        state.silence.open = []
        loc = state.location
        if loc.open_id and loc.open_type and loc.last_fix_ts:
            alerts.append(
                silence._alert(
                    f"{loc.open_type}_ended",
                    "info",
                    offender_id,
                    device_id,
                    loc.last_fix_ts,
                    at,
                    now,
                    loc.open_curfew,
                    ref=loc.open_id,
                    reason="monitoring_suspended",
                )
            )
        state.location = location.LocationState()
        if state.victims is not None:
            alerts += victims.close_all(
                state.victims, version, offender_id, device_id, at, now, "monitoring_suspended"
            )
        if state.suppressed.open:  # ends of suppressed breaches (and of their re-alerts)
            alerts += suspensions.follow(
                state.suppressed, alerts, version.conditions.suspensions, at=at, now=now
            )
            state.suppressed = suspensions.SuppressionState()
        return alerts

    @staticmethod
    def _resume(state: DeviceState, at: datetime) -> None:
        """Back to active: every rule starts clean from ``at`` (appointments stay decided)."""
        state.paused = False
        state.suppressed = suspensions.SuppressionState()
        state.silence = silence.SilenceState(last_ts=at)
        state.zones = zones.ZoneRulesState()
        state.alcohol = alcohol.AlcoholState()
        state.location = location.LocationState()
        state.victims = None
        state.attendance.since_s = max(state.attendance.since_s or 0.0, at.timestamp())

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
        wearer = self.registry.wearer
        rows: list[int] = []
        owners: list[str] = []
        times: list[float] = []
        for i, r in enumerate(readings):
            if not isinstance(r, GpsReading):
                continue
            found = wearer(r.device_id, r.ts)
            if found is None:
                continue
            offender, version = found
            if version is not None and version is latest.get(offender):
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
        caught_up = self._unseen_pause(state, version, state.offender_id, device_id, now, now)
        if caught_up:
            caught_up = [msgspec.structs.replace(a, detected_at=detected_at) for a in caught_up]
        if version.conditions.monitoring.status != "active" or state.paused:
            status = monitoring.status_at(version.conditions, now)
            if status != "active":
                alerts = self._pause(state, version, state.offender_id, device_id, now, now)
                return caught_up + [
                    msgspec.structs.replace(a, detected_at=detected_at) for a in alerts
                ]
            if state.paused:
                self._resume(state, _resumed_at(version, now))
        alerts = zones.on_tick(
            state.zones, version, state.offender_id, device_id, now=now, settings=self.settings
        )
        if version.conditions.suspensions or state.suppressed.open:
            alerts += suspensions.follow(
                state.suppressed, alerts, version.conditions.suspensions, at=now, now=now
            )
        if state.victims is not None and state.victims.episodes:
            alerts += victims.on_tick(
                state.victims,
                version,
                state.offender_id,
                device_id,
                now=now,
                settings=self.settings,
            )
        if version.compiled.appointments is not None:
            if state.attendance.version_s != _marker(version):
                state.attendance.version_s = _marker(version)
                attendance.conditions_changed(state.attendance)
            alerts += attendance.decide(
                state.attendance,
                version.compiled.appointments,
                state.offender_id,
                device_id,
                until_s=now.timestamp(),
                now=now,
                gap_s=version.conditions.gps_interval_s + self.settings.silence_buffer_s,
                active=self._active_at(state.offender_id),
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
        return caught_up + [msgspec.structs.replace(a, detected_at=detected_at) for a in alerts]

    @staticmethod
    def open_episode_kinds(state: DeviceState) -> list[str]:
        """Return the kind (exclusion, inclusion, curfew) of each open breach episode."""
        return zones.open_kinds(state.zones)


def _resumed_at(version: Version, t: datetime) -> datetime:
    """When monitoring became active again, as seen at ``t``: the suspension's end, else the
    start of the version that made it active (not the reading or tick that noticed, whose
    time depends on how the stream was batched)."""
    m = version.conditions.monitoring
    if m.status == "suspended" and m.until is not None and m.until <= t:
        return m.until
    return min(t, datetime.fromtimestamp(version.effective_s, UTC))

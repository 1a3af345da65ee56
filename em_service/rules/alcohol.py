"""Transdermal alcohol rules (SCRAM-style readings about every 30 minutes).

- ``alcohol_detected`` (high): TAC >= ``threshold_g_dl`` on ``consecutive`` readings in a row,
  whose first rise is plausible for drinking (<= ``max_absorption_g_dl_per_h``).
- ``alcohol_suspect_interferent`` (medium): the first reading over the threshold rose faster than
  drinking allows (hand sanitiser, perfume, solvents): flagged for review, not a confirmed drink.
- ``alcohol_tamper`` (high): the IR proximity value departs from its fitted baseline by more than
  ``ir_change_ratio``, the device reports no skin contact, or skin temperature falls below
  ``min_skin_temp_c`` or more than ``skin_temp_drop_c`` under its baseline (bracelet off).
- ``alcohol_missed_readings`` (medium): a gap of more than ``missed_gap_s`` between readings.

Readings older than the newest one seen are archived elsewhere but do not re-run these rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from msgspec import Struct

from em_service.contracts import AlcoholReading, Alert
from em_service.rules.ids import alert_id


class AlcoholConfig(Struct, frozen=True):
    """Thresholds of the alcohol rules (units in the names)."""

    threshold_g_dl: float = 0.020
    consecutive: int = 2
    max_absorption_g_dl_per_h: float = 0.05
    ir_change_ratio: float = 0.35
    min_skin_temp_c: float = 28.0
    skin_temp_drop_c: float = 4.0
    baseline_readings: int = 3
    baseline_alpha: float = 0.2
    missed_gap_s: float = 90 * 60.0


class AlcoholState(Struct):
    """Per-device alcohol state: last reading, open drinking episode, tamper baseline."""

    last_ts: datetime | None = None
    last_tac_g_dl: float = 0.0
    above: int = 0
    episode_start: datetime | None = None
    episode_kind: str | None = None  # "drink" | "interferent"
    episode_alerted: bool = False
    peak_tac_g_dl: float = 0.0
    ir_baseline: float | None = None
    skin_baseline_c: float | None = None
    baseline_n: int = 0
    tamper_start: datetime | None = None


def _alert(
    kind: str,
    severity: str,
    reading: AlcoholReading,
    offender_id: str,
    start: datetime,
    now: datetime,
    late: bool,
    **details: object,
) -> Alert:
    return Alert(
        alert_id=alert_id(offender_id, kind, reading.device_id, start),
        type=kind,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        offender_id=offender_id,
        device_id=reading.device_id,
        occurred_at=start,
        detected_at=now,
        episode_start=start,
        late=late,
        details=details,
    )


def _tamper_reason(r: AlcoholReading, s: AlcoholState, cfg: AlcoholConfig) -> str | None:
    if r.ir_contact is False:
        return "device reports no skin contact"
    if r.skin_temp_c < cfg.min_skin_temp_c:
        return f"skin temperature {r.skin_temp_c:.1f} °C below {cfg.min_skin_temp_c:.1f} °C"
    if s.baseline_n < cfg.baseline_readings or s.ir_baseline is None or s.skin_baseline_c is None:
        return None
    if s.skin_baseline_c - r.skin_temp_c > cfg.skin_temp_drop_c:
        return f"skin temperature fell {s.skin_baseline_c - r.skin_temp_c:.1f} °C under baseline"
    change = abs(r.ir_value - s.ir_baseline) / max(s.ir_baseline, 1e-9)
    if change > cfg.ir_change_ratio:
        return f"IR value {r.ir_value:.0f} departs {change:.0%} from baseline {s.ir_baseline:.0f}"
    return None


def _update_baseline(r: AlcoholReading, s: AlcoholState, cfg: AlcoholConfig) -> None:
    if s.ir_baseline is None or s.skin_baseline_c is None:
        s.ir_baseline, s.skin_baseline_c = r.ir_value, r.skin_temp_c
    else:
        a = (
            cfg.baseline_alpha
            if s.baseline_n >= cfg.baseline_readings
            else 1.0 / (s.baseline_n + 1)
        )
        s.ir_baseline += a * (r.ir_value - s.ir_baseline)
        s.skin_baseline_c += a * (r.skin_temp_c - s.skin_baseline_c)
    s.baseline_n += 1


def step(
    state: AlcoholState,
    reading: AlcoholReading,
    offender_id: str,
    *,
    now: datetime,
    late: bool = False,
    cfg: AlcoholConfig = AlcoholConfig(),  # noqa: B008 - frozen, immutable default
) -> list[Alert]:
    """Apply ``reading`` to ``state`` (mutated in place) and return the alerts it raises."""
    alerts: list[Alert] = []
    if state.last_ts is not None and reading.ts <= state.last_ts:
        return alerts  # older than what we have seen: archived, not re-evaluated
    gap_s = (reading.ts - state.last_ts).total_seconds() if state.last_ts else None
    if gap_s is not None and gap_s > cfg.missed_gap_s:
        alerts.append(
            _alert(
                "alcohol_missed_readings",
                "medium",
                reading,
                offender_id,
                state.last_ts + timedelta(seconds=cfg.missed_gap_s),
                now,
                late,
                gap_s=gap_s,
                last_reading_at=state.last_ts.isoformat(),
            )
        )

    reason = _tamper_reason(reading, state, cfg)
    if reason and state.tamper_start is None:
        state.tamper_start = reading.ts
        alerts.append(
            _alert(
                "alcohol_tamper",
                "high",
                reading,
                offender_id,
                reading.ts,
                now,
                late,
                reason=reason,
                ir_value=reading.ir_value,
                skin_temp_c=reading.skin_temp_c,
            )
        )
    elif not reason:
        state.tamper_start = None
        if reading.tac_g_dl < cfg.threshold_g_dl:
            _update_baseline(reading, state, cfg)

    if reading.tac_g_dl >= cfg.threshold_g_dl and not reason:
        if state.episode_start is None:
            rate = None
            if gap_s and gap_s <= cfg.missed_gap_s:
                rate = (reading.tac_g_dl - state.last_tac_g_dl) / (gap_s / 3600.0)
            state.episode_start, state.above, state.peak_tac_g_dl = reading.ts, 0, 0.0
            state.episode_alerted = False
            state.episode_kind = (
                "interferent"
                if rate is not None and rate > cfg.max_absorption_g_dl_per_h
                else "drink"
            )
            if state.episode_kind == "interferent":
                state.episode_alerted = True
                alerts.append(
                    _alert(
                        "alcohol_suspect_interferent",
                        "medium",
                        reading,
                        offender_id,
                        reading.ts,
                        now,
                        late,
                        tac_g_dl=reading.tac_g_dl,
                        rise_g_dl_per_h=round(rate or 0.0, 4),
                        max_absorption_g_dl_per_h=cfg.max_absorption_g_dl_per_h,
                    )
                )
        state.above += 1
        state.peak_tac_g_dl = max(state.peak_tac_g_dl, reading.tac_g_dl)
        if (
            state.episode_kind == "drink"
            and state.above >= cfg.consecutive
            and not state.episode_alerted
        ):
            state.episode_alerted = True
            alerts.append(
                _alert(
                    "alcohol_detected",
                    "high",
                    reading,
                    offender_id,
                    state.episode_start,
                    now,
                    late,
                    tac_g_dl=reading.tac_g_dl,
                    consecutive_readings=state.above,
                    threshold_g_dl=cfg.threshold_g_dl,
                )
            )
    elif reading.tac_g_dl < cfg.threshold_g_dl:
        state.episode_start, state.episode_kind, state.above = None, None, 0
        state.episode_alerted = False
    state.last_ts, state.last_tac_g_dl = reading.ts, reading.tac_g_dl
    return alerts

"""Transdermal alcohol tags (SCRAM-style): TAC curves, skin temperature, IR proximity, tamper.

A drinking episode is "absorption then elimination": TAC rises linearly
at 0.02–0.03 g/dL/h (at most 0.015 g/dL between two 30-min readings — a plausible rise) to a peak,
then falls at a constant (zero-order) elimination rate of 0.015–0.020 g/dL/h. Sensor noise is
N(0, 0.0015) g/dL clipped at 0 (rounded to 0.001). An *interferent* (e.g. a solvent near the
sensor) puts 0.06–0.12 g/dL on one reading out of nothing and 40 % of that on the next: a jump and
a decay faster than drinking allows. A *removal* (bracelet off) makes the IR value fall to 5–15 %
of its baseline (``ir_contact`` false) and the skin temperature decay towards ambient (21 °C,
time constant 15 min); TAC reads 0 while off. Baselines: skin 32–34 °C (±0.3 °C daily swing,
±0.15 °C noise), IR 900–1400 (±2 % noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

THRESHOLD_G_DL = 0.020
TAC_NOISE_G_DL = 0.0015
AMBIENT_C = 21.0
COOL_TAU_S = 900.0
WARM_TAU_S = 600.0
INTERFERENT_DECAY = 0.4
DELIVERY_S = (5.0, 60.0)


@dataclass(frozen=True, slots=True)
class Drink:
    """A drinking episode: TAC starts rising at ``start_s``, epoch seconds."""

    start_s: float
    rise_g_dl_h: float
    peak_g_dl: float
    elim_g_dl_h: float

    @property
    def peak_s(self) -> float:
        """When TAC peaks."""
        return self.start_s + self.peak_g_dl / self.rise_g_dl_h * 3600.0

    @property
    def end_s(self) -> float:
        """When TAC is back at zero."""
        return self.peak_s + self.peak_g_dl / self.elim_g_dl_h * 3600.0

    def tac(self, t_s: np.ndarray) -> np.ndarray:
        """Return the true TAC at ``t_s``, g/dL."""
        up = self.rise_g_dl_h * (t_s - self.start_s) / 3600.0
        down = self.peak_g_dl - self.elim_g_dl_h * (t_s - self.peak_s) / 3600.0
        return np.clip(np.where(t_s <= self.peak_s, up, down), 0.0, None)

    def crossing_s(self, level_g_dl: float = THRESHOLD_G_DL) -> tuple[float, float]:
        """Return when the true TAC rises through, and falls back below, ``level_g_dl``."""
        up = self.start_s + level_g_dl / self.rise_g_dl_h * 3600.0
        down = self.peak_s + (self.peak_g_dl - level_g_dl) / self.elim_g_dl_h * 3600.0
        return up, down


def random_drink(rng: np.random.Generator, start_s: float) -> Drink:
    """Return a drinking episode starting at ``start_s`` (peak 0.04–0.10 g/dL)."""
    rise = float(rng.uniform(0.02, 0.03))
    peak = float(rng.uniform(0.04, 0.10))
    return Drink(start_s, rise, peak, float(rng.uniform(0.015, 0.020)))


@dataclass(slots=True)
class AlcoholPlan:
    """One alcohol tag: baselines and episodes (epoch seconds)."""

    skin_temp_c: float
    ir_baseline: float
    drinks: list[Drink] = field(default_factory=list)
    interferents: list[tuple[float, float]] = field(default_factory=list)  # (reading_s, g/dL)
    removals: list[tuple[float, float]] = field(default_factory=list)  # (off_s, on_s)


@dataclass(slots=True)
class AlcoholReadings:
    """Alcohol readings, one row each."""

    dev: np.ndarray
    ts_s: np.ndarray
    tac_g_dl: np.ndarray
    true_tac_g_dl: np.ndarray
    skin_temp_c: np.ndarray
    ir_value: np.ndarray
    ir_contact: np.ndarray
    delivered_s: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_s)

    @classmethod
    def concat(cls, parts: list[AlcoholReadings]) -> AlcoholReadings:
        """Return all ``parts`` as one table."""
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    @classmethod
    def empty(cls) -> AlcoholReadings:
        """Return a table without rows."""
        return cls(*(np.zeros(0) for _ in fields(cls)))


def reading_times(start_s: float, end_s: float, phase_s: float, interval_s: float) -> np.ndarray:
    """Return the reading instants of one tag in ``[start_s, end_s)`` (whole seconds)."""
    first = start_s + phase_s
    n = max(int(np.floor((end_s - 1e-6 - first) / interval_s)) + 1, 0)
    return np.floor(first + np.arange(n) * interval_s).astype(np.int64)


def simulate_tag(
    dev: int,
    plan: AlcoholPlan,
    ts_s: np.ndarray,
    rng: np.random.Generator,
) -> AlcoholReadings:
    """Return the readings of one tag at ``ts_s``."""
    t = ts_s.astype(float)
    n = len(t)
    true = np.zeros(n)
    for drink in plan.drinks:
        true += drink.tac(t)
    for at_s, peak in plan.interferents:
        k = np.searchsorted(t, at_s)
        if k < n and t[k] == at_s:
            true[k] += peak
            if k + 1 < n:
                true[k + 1] += peak * INTERFERENT_DECAY
    tac = np.clip(true + TAC_NOISE_G_DL * rng.standard_normal(n), 0.0, 1.0)
    hour = (t % 86400.0) / 3600.0
    temp = plan.skin_temp_c + 0.3 * np.sin(2 * np.pi * (hour - 10.0) / 24.0)
    temp += 0.15 * rng.standard_normal(n)
    ir = plan.ir_baseline * (1.0 + 0.02 * rng.standard_normal(n))
    contact = np.ones(n, bool)
    for off_s, on_s in plan.removals:
        off = (t >= off_s) & (t < on_s)
        contact &= ~off
        tac[off] = 0.0
        true[off] = 0.0
        ir[off] = plan.ir_baseline * rng.uniform(0.05, 0.15, size=off.sum())
        cooled = AMBIENT_C + (temp[off] - AMBIENT_C) * np.exp(-(t[off] - off_s) / COOL_TAU_S)
        temp[off] = cooled + 0.3 * rng.standard_normal(off.sum())
        after = t >= on_s
        at_on = AMBIENT_C + (plan.skin_temp_c - AMBIENT_C) * np.exp(-(on_s - off_s) / COOL_TAU_S)
        temp[after] -= (plan.skin_temp_c - at_on) * np.exp(-(t[after] - on_s) / WARM_TAU_S)
    return AlcoholReadings(
        dev=np.full(n, dev, np.int32),
        ts_s=ts_s,
        tac_g_dl=np.round(tac, 3),
        true_tac_g_dl=true,
        skin_temp_c=np.round(temp, 1),
        ir_value=np.round(np.clip(ir, 0.0, 100_000.0), 1),
        ir_contact=contact,
        delivered_s=t + rng.uniform(*DELIVERY_S, size=n),
    )

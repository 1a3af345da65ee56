"""Per-device time intervals (gaps, outages, silences) with vectorised membership tests."""

from __future__ import annotations

import numpy as np


class IntervalSet:
    """Half-open intervals ``[t0_s, t1_s)`` per device; non-overlapping within a device.

    >>> s = IntervalSet([0, 1], [10.0, 5.0], [20.0, 6.0])
    >>> s.lookup(np.array([0, 0, 1]), np.array([15.0, 25.0, 5.5])).tolist()
    [0, -1, 1]
    """

    def __init__(self, dev, t0_s, t1_s) -> None:
        dev = np.asarray(dev, np.int64)
        t0, t1 = np.asarray(t0_s, float), np.asarray(t1_s, float)
        order = np.lexsort((t0, dev))
        self.dev, self.t0_s, self.t1_s = dev[order], t0[order], t1[order]
        self._origin = float(self.t0_s.min()) - 1.0 if len(self.t0_s) else 0.0
        span = float(self.t1_s.max() - self._origin) + 1.0 if len(self.t0_s) else 1.0
        self._scale = 10.0 ** np.ceil(np.log10(max(span, 10.0)) + 1)
        self._key = self.dev * self._scale + (self.t0_s - self._origin)

    def __len__(self) -> int:
        return len(self.dev)

    def lookup(self, dev: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        """Return, per query, the index of the interval containing ``t_s`` on ``dev``, or -1."""
        dev, t_s = np.asarray(dev, np.int64), np.asarray(t_s, float)
        if not len(self):
            return np.full(dev.shape, -1)
        key = dev * self._scale + (t_s - self._origin)
        k = np.searchsorted(self._key, key, side="right") - 1
        kc = np.clip(k, 0, len(self) - 1)
        hit = (k >= 0) & (self.dev[kc] == dev) & (t_s >= self.t0_s[kc]) & (t_s < self.t1_s[kc])
        return np.where(hit, kc, -1)

    def contains(self, dev: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        """Return a bool array: ``t_s`` lies in one of ``dev``'s intervals."""
        return self.lookup(dev, t_s) >= 0

    def of(self, dev: int) -> list[tuple[float, float]]:
        """Return the intervals of one device."""
        m = self.dev == dev
        return list(zip(self.t0_s[m].tolist(), self.t1_s[m].tolist(), strict=True))


def overlaps(t0: float, t1: float, taken: list[tuple[float, float]], margin_s: float) -> bool:
    """Return whether ``[t0, t1)`` comes within ``margin_s`` of any interval in ``taken``."""
    return any(t0 < b + margin_s and t1 > a - margin_s for a, b in taken)


class PiecewiseSeries:
    """Piecewise-linear values per device (e.g. battery percent), interpolated in bulk."""

    def __init__(self, t_s: list[list[float]], values: list[list[float]]) -> None:
        counts = np.array([len(t) for t in t_s])
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.t_s = np.concatenate([np.asarray(t, float) for t in t_s])
        self.v = np.concatenate([np.asarray(v, float) for v in values])
        dev = np.repeat(np.arange(len(t_s)), counts)
        self._origin = float(self.t_s.min()) - 1.0
        self._scale = 10.0 ** np.ceil(np.log10(float(self.t_s.max() - self._origin) + 10.0) + 1)
        self._key = dev * self._scale + (self.t_s - self._origin)

    def at(self, dev: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        """Return the value of each ``dev`` at ``t_s`` (held constant outside its knots)."""
        dev, t_s = np.asarray(dev, np.int64), np.asarray(t_s, float)
        key = dev * self._scale + (t_s - self._origin)
        k = np.searchsorted(self._key, key, side="right") - 1
        lo, hi = self.offsets[dev], self.offsets[dev + 1] - 1
        k = np.clip(k, lo, hi)
        k1 = np.minimum(k + 1, hi)
        t0, t1 = self.t_s[k], self.t_s[k1]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(t1 > t0, np.clip((t_s - t0) / (t1 - t0), 0.0, 1.0), 0.0)
        return self.v[k] + u * (self.v[k1] - self.v[k])

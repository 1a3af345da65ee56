"""Simulation parameters: one typed, documented field each, units in the names."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

#: Default start: a recent, fixed instant (a Monday, 00:00 GMT) so that runs are reproducible.
DEFAULT_START = datetime(2026, 11, 16, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Noise:
    """Rates of the imperfections added to every tag (scripted intervals are kept clean).

    Attributes
    ----------
    outlier_rate
        Probability that a GPS fix is a multipath outlier (displaced 60–250 m, same accuracy).
    nofix_gaps_per_day
        Rate of "no fix" gaps (2–8 min) per tag-day; fixes are lost only while indoors.
    outages_per_day
        Rate of short cellular outages (2–9 min): fixes are buffered and uploaded in a burst.
    long_outages_per_day
        Rate of long cellular outages (15–45 min): a burst *and* a silent tag for the service.
    """

    outlier_rate: float = 0.001
    nofix_gaps_per_day: float = 0.8
    outages_per_day: float = 0.4
    long_outages_per_day: float = 0.05


NOISE_PRESETS = {
    "clean": Noise(0.0, 0.0, 0.0, 0.0),
    "normal": Noise(),
    "heavy": Noise(0.005, 3.0, 1.5, 0.3),
}


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that determines a simulation; equal configs give byte-identical output.

    Attributes
    ----------
    persons
        Number of simulated people (one GPS tag each; some also wear an alcohol tag).
    start
        Aware start instant (converted to UTC, whole seconds); the simulation covers
        ``[start, start + days)``.
    days
        Simulated duration in days (may be fractional).
    seed
        Seed of every random stream.
    gps_interval_s
        GPS fix interval, seconds.
    alcohol_interval_s
        Alcohol (transdermal) reading interval, seconds.
    centre_lat, centre_lon
        Centre of the simulated area, WGS84 degrees (default: a fictional town near 51.45 N, 0.97 W).
    half_size_m
        Half the side of the square area, metres.
    scenarios
        Scenario kind → number of instances (see :mod:`simulator.scenarios`).
    noise
        Imperfection rates (:class:`Noise`).
    curfew_fraction, alcohol_fraction, inclusion_fraction, scheduled_zone_fraction
        Shares of the background cohort with a curfew, an alcohol tag, an inclusion zone, and of
        exclusion zones with a weekly schedule.
    drinking_per_day
        Chance per day that a background person with an alcohol tag drinks in the evening.
    scenes_per_day
        Background burglary scenes reported per simulated day (random places, overnight windows).
    silence_buffer_s
        Assumed service buffer for the silence rule: a tag is silent when nothing arrived for
        ``gps_interval_s + silence_buffer_s`` (used for the ground truth only).
    timezone
        Local time zone of schedules and scenario times.
    """

    persons: int = 50
    start: datetime = DEFAULT_START
    days: float = 1.0
    seed: int = 7
    gps_interval_s: float = 60.0
    alcohol_interval_s: float = 1800.0
    centre_lat: float = 51.45
    centre_lon: float = -0.97
    half_size_m: float = 6000.0
    scenarios: dict[str, int] = field(default_factory=dict)
    noise: Noise = field(default_factory=Noise)
    curfew_fraction: float = 0.7
    alcohol_fraction: float = 0.2
    inclusion_fraction: float = 0.1
    scheduled_zone_fraction: float = 0.3
    drinking_per_day: float = 0.05
    scenes_per_day: float = 2.0
    silence_buffer_s: float = 600.0
    timezone: str = "Europe/London"

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be an aware datetime (e.g. 2026-11-16T00:00:00Z)")
        object.__setattr__(self, "start", self.start.astimezone(UTC).replace(microsecond=0))
        if self.persons < 1:
            raise ValueError("persons must be at least 1")
        if not 0 < self.days <= 400:
            raise ValueError("days must be in (0, 400]")
        if not 1 <= self.gps_interval_s <= 3600:
            raise ValueError("gps_interval_s must be in [1, 3600]")
        if not 60 <= self.alcohol_interval_s <= 86400:
            raise ValueError("alcohol_interval_s must be in [60, 86400]")
        if self.half_size_m < 2000:
            raise ValueError("half_size_m must be at least 2000")

    @property
    def start_s(self) -> float:
        """Epoch seconds of ``start``."""
        return self.start.timestamp()

    @property
    def duration_s(self) -> float:
        """Simulated duration, seconds."""
        return self.days * 86400.0

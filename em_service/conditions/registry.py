"""The worker's view of everyone's conditions: versions by event time, and device → offender.

Conditions arrive as events (compacted topic, key = offender_id). Each version applies from its
``updated_at`` (else ``valid_from``, else always) so that a change takes effect for readings after
it by *event time*, even when older readings arrive later. A null value removes the offender.
Every document passes :func:`em_service.conditions.validate.check` (the API's and CLI's check
too) before it is in force; its compiled geometry is kept with the version.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime

from em_service.conditions.validate import check
from em_service.contracts import Conditions
from geofences import CompiledConditions, ZoneIndex

_NEVER = float("-inf")
MAX_VERSIONS = 8


@dataclass
class Version:
    """One version of a person's conditions, effective from ``effective_s`` (epoch seconds)."""

    effective_s: float
    conditions: Conditions
    compiled: CompiledConditions = field(repr=False)
    _subjects: frozenset[str] | None = field(default=None, repr=False)

    @property
    def subject_ids(self) -> frozenset[str]:
        """The zone and curfew ids of this version (built once)."""
        if self._subjects is None:
            c = self.conditions
            self._subjects = frozenset(
                [z.properties.zone_id for z in c.zones] + [k.curfew_id for k in c.curfews]
            )
        return self._subjects

    def covers(self, ts: datetime) -> bool:
        """Return True if the conditions are in force at ``ts`` (valid_from/valid_to)."""
        c = self.conditions
        return (c.valid_from is None or ts >= c.valid_from) and (
            c.valid_to is None or ts < c.valid_to
        )


def _effective_s(c: Conditions) -> float:
    moment = c.updated_at or c.valid_from
    return moment.timestamp() if moment else _NEVER


class ConditionsRegistry:
    """Versions of every offender's conditions and the device → offender index."""

    def __init__(self, crs: str = "EPSG:27700") -> None:
        self.crs = crs
        self._versions: dict[str, list[Version]] = {}
        self._by_device: dict[str, str] = {}
        self._raw: dict[str, bytes | None] = {}
        self._index: tuple[ZoneIndex, dict[str, Version]] | None = None

    def __len__(self) -> int:
        return len(self._versions)

    def apply(self, offender_id: str, raw: bytes | None) -> Conditions | None:
        """Apply one event from the conditions topic; return the conditions, or None if removed.

        Raises :class:`~em_service.conditions.validate.InvalidConditions` on an invalid document
        (the caller counts and logs it; the previous version stays in force).
        """
        if self._raw.get(offender_id, b"") == raw:
            return self.latest(offender_id)
        self._index = None
        if raw is None:
            for version in self._versions.pop(offender_id, []):
                for device in version.conditions.device_ids:
                    if self._by_device.get(device) == offender_id:
                        del self._by_device[device]
            self._raw[offender_id] = None
            return None
        checked = check(raw, crs=self.crs, key=offender_id)  # before anything changes
        conditions = checked.conditions
        version = Version(_effective_s(conditions), conditions, checked.compiled)
        versions = self._versions.setdefault(offender_id, [])
        keys = [v.effective_s for v in versions]
        at = bisect.bisect_right(keys, version.effective_s)
        if at and keys[at - 1] == version.effective_s:
            versions[at - 1] = version  # same effective time: the newer document replaces it
        else:
            versions.insert(at, version)
        del versions[:-MAX_VERSIONS]
        for device in conditions.device_ids:
            self._by_device[device] = offender_id
        self._raw[offender_id] = raw
        return conditions

    def latest(self, offender_id: str) -> Conditions | None:
        """Return the newest version's conditions for ``offender_id``."""
        versions = self._versions.get(offender_id)
        return versions[-1].conditions if versions else None

    def offender_for(self, device_id: str, ts: datetime | None = None) -> str | None:
        """Return the offender wearing ``device_id`` (at event time ``ts`` if given), or None.

        With ``ts``, a tag is someone's only while the version of their conditions of that
        time lists it: a tag assigned from a later date, or unassigned until an earlier one
        (a version without it), is nobody's at ``ts``.
        """
        if ts is None:
            return self._by_device.get(device_id)
        found = self.wearer(device_id, ts)
        return found[0] if found else None

    def wearer(self, device_id: str, ts: datetime) -> tuple[str, Version | None] | None:
        """Return who wears ``device_id`` at event time ``ts`` and their version in force then.

        One lookup for ``(offender_for(device_id, ts), at(offender, ts))``: None if the tag is
        nobody's at ``ts``; the version is None if their conditions are not in force at ``ts``.
        """
        offender = self._by_device.get(device_id)
        if offender is None:
            return None
        version = self._version_at(offender, ts)
        if version is None:
            return offender, None
        if device_id not in version.conditions.device_ids:
            return None
        return offender, version if version.covers(ts) else None

    def _version_at(self, offender_id: str, ts: datetime) -> Version | None:
        versions = self._versions.get(offender_id)
        if not versions:
            return None
        ts_s = ts.timestamp()
        newest = versions[-1]
        if ts_s >= newest.effective_s:  # the usual case: a reading after the newest change
            return newest
        at = bisect.bisect_right([v.effective_s for v in versions], ts_s)
        return versions[max(at - 1, 0)]

    def at(self, offender_id: str, ts: datetime) -> Version | None:
        """Return the version in force for ``offender_id`` at event time ``ts``, or None."""
        version = self._version_at(offender_id, ts)
        return version if version is not None and version.covers(ts) else None

    def batch_index(self) -> tuple[ZoneIndex, dict[str, Version]]:
        """Return one :class:`ZoneIndex` over everyone's newest version (rebuilt after changes).

        The dict maps offender_id to the version indexed; a fix whose version in force is not
        that one (an older version, by event time) is evaluated on its own instead.
        """
        if self._index is None:
            latest = {o: vs[-1] for o, vs in self._versions.items() if vs}
            self._index = ZoneIndex({o: v.compiled for o, v in latest.items()}), latest
        return self._index

    def devices(self) -> list[str]:
        """Return the ids of every enrolled device."""
        return list(self._by_device)

    def offenders(self) -> list[str]:
        """Return the ids of everyone with conditions."""
        return list(self._versions)

"""Crime-batch configuration: the forces of the scheme and the matching radius per crime type.

Forces join and leave the scheme: the list is configuration. ``EM_BATCHES_FORCES`` replaces the
default list with ``CODE=Force name`` pairs separated by ``;`` (or ``EM_BATCHES_FORCES_FILE``, a
CSV file of ``code,name`` lines). ``EM_BATCHES_RADIUS_M`` overrides radii as ``CODE=metres``
pairs (``BIAD=60;RB=120``). The time pad and the interpolation rule are the scene settings
(``EM_SCENES_TIME_PAD_S``, ``EM_SCENES_MAX_GAP_S``, ``EM_SCENES_MAX_SPEED_MPS``).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The 19 force areas of the acquisitive-crime EM scheme (short code → force name).
DEFAULT_FORCES: dict[str, str] = {
    "AVS": "Avon and Somerset Constabulary",
    "BFD": "Bedfordshire Police",
    "CHS": "Cheshire Constabulary",
    "CoLP": "City of London Police",
    "CMB": "Cumbria Constabulary",
    "DBY": "Derbyshire Constabulary",
    "DUR": "Durham Constabulary",
    "ESX": "Essex Police",
    "GLC": "Gloucestershire Constabulary",
    "GWP": "Gwent Police",
    "HAM": "Hampshire and Isle of Wight Constabulary",
    "HRT": "Hertfordshire Constabulary",
    "HMB": "Humberside Police",
    "KNT": "Kent Police",
    "MPS": "Metropolitan Police Service",
    "NWL": "North Wales Police",
    "NOT": "Nottinghamshire Police",
    "SXP": "Sussex Police",
    "WMP": "West Midlands Police",
}

#: crimeType code → (the service's crime type, description). ``AB`` (attempted burglary) does
#: not say whether a dwelling: it is matched like a dwelling burglary; ``TOMV`` (theft *of* a
#: vehicle) like theft from one. The code itself is kept in the scene's ``source``.
CRIME_TYPE_CODES: dict[str, tuple[str, str]] = {
    "RB": ("robbery", "Robbery"),
    "BIAD": ("burglary_dwelling", "Burglary in a dwelling"),
    "AB": ("burglary_dwelling", "Attempted burglary"),
    "BOTD": ("burglary_business", "Burglary other than a dwelling"),
    "TOMV": ("theft_from_vehicle", "Theft of a motor vehicle"),
    "TFP": ("theft_from_person", "Theft from the person"),
    "TFMV": ("theft_from_vehicle", "Theft from a motor vehicle"),
}

#: Matching radius per crime type, metres (reasons in the README: a building's address is
#: geocoded to its footprint; street crimes are placed from a victim's account).
DEFAULT_RADIUS_M: dict[str, float] = {
    "BIAD": 50.0,
    "AB": 50.0,
    "BOTD": 75.0,
    "RB": 100.0,
    "TFP": 100.0,
    "TOMV": 100.0,
    "TFMV": 100.0,
}


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(";"):
        if part.strip():
            code, _, value = part.partition("=")
            if not code.strip() or not value.strip():
                raise ValueError(f"expected CODE=value, got {part!r}")
            out[code.strip()] = value.strip()
    return out


class BatchSettings(BaseSettings):
    """Crime-batch settings (``EM_BATCHES_`` + field name)."""

    model_config = SettingsConfigDict(env_prefix="EM_BATCHES_", env_file=None, extra="ignore")

    forces: str = Field("", description="CODE=Force name;… replacing the default 19 forces")
    forces_file: Path | None = Field(None, description="CSV of code,name replacing the forces")
    radius_m: str = Field("", description="CODE=metres;… overriding radii per crime type")
    max_window_s: float = Field(
        12 * 3600.0, gt=0, description="Longest window of opportunity (crimeDateTimeTo − From)"
    )
    max_batch_age_days: int = Field(
        366, ge=1, description="A batch id dated more than this before today is implausible"
    )
    max_crime_text: int = Field(2000, ge=0, description="crimeText kept up to this many chars")
    drop_folder: Path | None = Field(None, description="Folder watched for batch files")
    drop_poll_s: float = Field(5.0, gt=0, description="Drop folder: seconds between looks")

    def force_table(self) -> dict[str, str]:
        """Return short code → force name, from the settings or the default list."""
        if self.forces_file is not None:
            with self.forces_file.open(newline="", encoding="utf-8-sig") as f:
                return {r[0].strip(): r[1].strip() for r in csv.reader(f) if len(r) >= 2}
        return _pairs(self.forces) if self.forces.strip() else dict(DEFAULT_FORCES)

    def radii(self) -> dict[str, float]:
        """Return crime type code → matching radius, metres."""
        return DEFAULT_RADIUS_M | {k: float(v) for k, v in _pairs(self.radius_m).items()}


@lru_cache(maxsize=1)
def get_batch_settings() -> BatchSettings:
    """Return the process-wide batch settings (read once from the environment)."""
    return BatchSettings()

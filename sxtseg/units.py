"""Length units: names, aliases and conversion factors.

sxtseg stores a voxel size together with its unit.  SXT volumes use
nanometres (``"nm"``), clinical CT/CXR use millimetres (``"mm"``, as DICOM
gives it).  File formats spell units in many ways (MRC headers are in
ångström, OME uses ``"nanometer"`` or ``"µm"``, ImageJ writes ``"micron"``);
this module maps them all onto the three short names sxtseg uses.

Examples
--------
>>> from sxtseg.units import convert_length, normalize_unit
>>> normalize_unit("micron")
'um'
>>> convert_length(12.0, "angstrom", "nm")
1.2
"""

from __future__ import annotations

from .errors import VoxelSizeError

__all__ = ["LENGTH_UNITS", "OME_UNIT_NAMES", "normalize_unit", "unit_family", "convert_length", "to_nm"]

#: Length of one unit in nanometres, for every unit sxtseg stores.
LENGTH_UNITS: dict[str, float] = {"nm": 1.0, "um": 1e3, "mm": 1e6}

#: Names that OME-NGFF (UDUNITS-2) uses for each stored unit.
OME_UNIT_NAMES: dict[str, str] = {"nm": "nanometer", "um": "micrometer", "mm": "millimeter"}

# every spelling seen in the wild -> (sxtseg unit, factor to multiply by)
_ALIASES: dict[str, tuple[str, float]] = {
    "nm": ("nm", 1.0),
    "nanometer": ("nm", 1.0),
    "nanometre": ("nm", 1.0),
    "um": ("um", 1.0),
    "µm": ("um", 1.0),
    "μm": ("um", 1.0),  # Greek mu
    "micron": ("um", 1.0),
    "microns": ("um", 1.0),
    "micrometer": ("um", 1.0),
    "micrometre": ("um", 1.0),
    "\\u00b5m": ("um", 1.0),  # ImageJ escapes the micro sign
    "mm": ("mm", 1.0),
    "millimeter": ("mm", 1.0),
    "millimetre": ("mm", 1.0),
    "a": ("nm", 0.1),
    "å": ("nm", 0.1),
    "angstrom": ("nm", 0.1),
    "ångström": ("nm", 0.1),
    "cm": ("mm", 10.0),
    "centimeter": ("mm", 10.0),
    "m": ("mm", 1000.0),
    "meter": ("mm", 1000.0),
    "pm": ("nm", 1e-3),
    "picometer": ("nm", 1e-3),
}


def normalize_unit(unit: str) -> str:
    """Return the sxtseg name (``"nm"``, ``"um"`` or ``"mm"``) of a length unit.

    Only units that need no rescaling are accepted here; use
    :func:`convert_length` for ångström, centimetres and the like.

    Raises
    ------
    VoxelSizeError
        If ``unit`` is not a known length unit, or needs a scale factor.
    """
    key = str(unit).strip().lower() if unit is not None else ""
    key = "µm" if key in ("μm", "µm") else key
    if key not in _ALIASES or _ALIASES[key][1] != 1.0:
        raise VoxelSizeError(
            f"unknown length unit {unit!r}; sxtseg stores voxel sizes in one of {sorted(LENGTH_UNITS)}"
        )
    return _ALIASES[key][0]


def unit_family(unit: str) -> str:
    """The stored unit (``"nm"``, ``"um"`` or ``"mm"``) nearest to any known length unit.

    ångström and picometres belong to ``"nm"``, centimetres and metres to ``"mm"``.

    Raises
    ------
    VoxelSizeError
        If ``unit`` is not a known length unit.
    """
    key = str(unit).strip().lower()
    if key not in _ALIASES:
        raise VoxelSizeError(f"unknown length unit {unit!r}")
    return _ALIASES[key][0]


def _picometres(unit: str) -> int:
    """Length of one ``unit`` in picometres: an exact integer for every known unit."""
    key = str(unit).strip().lower()
    if key not in _ALIASES:
        raise VoxelSizeError(f"unknown length unit {unit!r}")
    base, factor = _ALIASES[key]
    return round(factor * LENGTH_UNITS[base] * 1000)


def convert_length(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a length between any two known units.

    Parameters
    ----------
    value : float
        The length, in ``from_unit``.
    from_unit, to_unit : str
        Unit names (``"nm"``, ``"angstrom"``, ``"micrometer"``, ``"mm"``...).

    Returns
    -------
    float
        The length in ``to_unit``.
    """
    a, b = _picometres(from_unit), _picometres(to_unit)
    # multiply or divide by an exact integer ratio: 12 Å -> 1.2 nm, not 1.2000000000000002
    return float(value) * (a // b) if a >= b else float(value) / (b // a)


def to_nm(value: float, unit: str) -> float:
    """Convert a length in ``unit`` to nanometres."""
    return convert_length(value, unit, "nm")

"""OME-NGFF metadata versions: one class per spec version, plus detection.

NGFF 0.4 stores its metadata at the top level of a Zarr v2 group's
attributes (``.zattrs``); NGFF 0.5 stores it under the ``"ome"`` key of a
Zarr v3 group's attributes (``zarr.json``) and moves ``version`` there.
Readers call :func:`detect_format` and then ask the format for what they
need; writers ask it to wrap what they write.

References: https://ngff.openmicroscopy.org/0.4/ and /0.5/.
"""

from __future__ import annotations

from typing import Any

from ..errors import CorruptFileError, InvalidArgumentError, VoxelSizeError
from ..units import OME_UNIT_NAMES, convert_length, normalize_unit, unit_family

__all__ = ["FormatV04", "FormatV05", "detect_format", "FORMATS", "axes_metadata", "scale_from_multiscale"]


class FormatV04:
    """NGFF 0.4: Zarr v2, metadata at the top level of the attributes."""

    version = "0.4"
    zarr_format = 2

    def ome(self, attrs: dict) -> dict:
        """The dictionary holding the OME keys."""
        return attrs

    def wrap(self, ome: dict) -> dict:
        """Attributes to write for the OME keys in ``ome`` (version added where the spec wants it)."""
        out = dict(ome)
        if "multiscales" in out:
            out["multiscales"] = [{"version": self.version, **m} for m in out["multiscales"]]
        if "image-label" in out:
            out["image-label"] = {"version": self.version, **out["image-label"]}
        return out


class FormatV05(FormatV04):
    """NGFF 0.5: Zarr v3, metadata under ``attributes["ome"]`` with ``version`` there."""

    version = "0.5"
    zarr_format = 3

    def ome(self, attrs: dict) -> dict:
        return attrs.get("ome", {})

    def wrap(self, ome: dict) -> dict:
        return {"ome": {"version": self.version, **ome}}


FORMATS = {"0.4": FormatV04(), "0.5": FormatV05()}


def detect_format(attrs: dict) -> FormatV04 | None:
    """The NGFF format of a group's attributes, or None if it is not an OME-Zarr image/labels group."""
    if isinstance(attrs.get("ome"), dict):
        version = str(attrs["ome"].get("version", "0.5"))
        return FORMATS.get(version, FORMATS["0.5"])
    if "multiscales" in attrs or "labels" in attrs or "image-label" in attrs:
        return FORMATS["0.4"]  # 0.4 and earlier keep the keys at the top level
    return None


def axes_metadata(axes: str, unit: str) -> list[dict[str, str]]:
    """The ``axes`` list for spatial axes ``axes`` (e.g. "zyx") in ``unit``."""
    name = OME_UNIT_NAMES[normalize_unit(unit)]
    return [{"name": a, "type": "space", "unit": name} for a in axes]


def _scale_of(transforms: list[dict] | None, n: int, where: str) -> list[float]:
    scale = [1.0] * n
    for t in transforms or []:
        if t.get("type") == "scale":
            values = t.get("scale")
            if values is None or len(values) != n:
                raise CorruptFileError(f"{where}: scale transform {values} does not match {n} axes")
            scale = [a * float(b) for a, b in zip(scale, values)]
    return scale


def _translation_of(transforms: list[dict] | None, n: int) -> list[float] | None:
    for t in transforms or []:
        if t.get("type") == "translation" and t.get("translation") is not None:
            return [float(v) for v in t["translation"]]
    return None


def scale_from_multiscale(multiscale: dict, level: int, where: str) -> dict[str, Any]:
    """Axis names, per-axis scale, translation and units of one pyramid level.

    Returns a dict with ``path``, ``axes`` (letters), ``types``, ``units``
    (one per axis, None where absent), ``scale`` (per axis, dataset scale
    times the multiscale-wide scale) and ``translation`` (or None).
    """
    datasets = multiscale.get("datasets") or []
    if not datasets:
        raise CorruptFileError(f"{where}: OME multiscales has no datasets")
    if not -len(datasets) <= level < len(datasets):
        raise InvalidArgumentError(f"{where}: level={level} requested but the pyramid has {len(datasets)} levels")
    raw_axes = multiscale.get("axes")
    dataset = datasets[level]
    if raw_axes is None:  # NGFF <= 0.2 had no axes: always 5D tczyx
        raw_axes = ["t", "c", "z", "y", "x"]
    axes = [a if isinstance(a, dict) else {"name": a} for a in raw_axes]
    n = len(axes)
    scale = _scale_of(dataset.get("coordinateTransformations"), n, where)
    overall = _scale_of(multiscale.get("coordinateTransformations"), n, where)
    return {
        "path": str(dataset["path"]),
        "axes": "".join(str(a["name"]).lower()[:1] for a in axes),
        "types": [a.get("type") for a in axes],
        "units": [a.get("unit") for a in axes],
        "scale": [a * b for a, b in zip(scale, overall)],
        "translation": _translation_of(dataset.get("coordinateTransformations"), n),
        "levels": len(datasets),
    }


def normalize_unit_or_none(unit: str) -> str | None:
    try:
        return normalize_unit(unit)
    except VoxelSizeError:
        return None


def spatial_voxel_size(
    axes: str, units: list[str | None], scale: list[float], where: str
) -> tuple[tuple[float, ...] | None, str, str | None]:
    """Voxel size of the spatial axes in one unit.

    Returns ``(voxel_size or None, unit, reason_if_missing)``.  Units the
    Volume model stores (nm, µm, mm) are kept; others are converted to nm
    (ångström, picometre) or mm (cm, m).
    """
    spatial = [i for i, a in enumerate(axes) if a in "zyx"]
    spatial_units = [units[i] for i in spatial]
    if any(u is None for u in spatial_units):
        return None, "nm", "the OME axes carry no units"
    families = {unit_family(u) for u in spatial_units}
    if len(set(spatial_units)) == 1 and normalize_unit_or_none(spatial_units[0]):
        target = normalize_unit(spatial_units[0])
    else:
        target = "mm" if families == {"mm"} else "nm"
    values = tuple(convert_length(scale[i], units[i], target) for i in spatial)
    if not all(v > 0 for v in values):
        raise VoxelSizeError(f"{where}: OME scale {values} {target} must be positive")
    return values, target, None

"""Intensity calibration: bring a tomogram's grey values to linear absorption coefficients (1/µm).

The shipped models read linear absorption coefficients (LAC, 1/µm).  Real
reconstructions come in other conventions: LAC, attenuation per voxel (LAC
times the voxel edge in µm), or integer grey values with a scale and an
offset, and even LAC differs between microscopes, photon energies and
reconstructions.  :func:`calibrate` maps any of them to LAC with a linear map
``lac = scale * value + offset`` and returns a :class:`CalibrationRecord`
saying what it did and how far it can be trusted.

``method="auto"`` recognises the convention from the dtype, the metadata and
the value range, then makes a two-point calibration from two references
found in the histogram of the volume: the vitreous-ice peak (the lowest
large peak, or a higher one holding more voxels, :func:`_ice_and_cytoplasm`)
and the cytoplasm peak (the largest one above it), mapped to published LAC
values at about 517 eV (:data:`REFERENCE_LAC`):

* vitreous ice 0.109 1/µm (Weiss et al. 2000, Ultramicroscopy 84:185;
  Le Gros, McDermott & Larabell 2005, Curr. Opin. Struct. Biol. 15:593);
* cytoplasm 0.22 1/µm, inside the 0.20-0.25 1/µm reported for eukaryotic
  cells (Parkinson et al. 2008, J. Struct. Biol. 162:380; Uchida et al. 2009,
  PNAS 106:19375).

The two values are those :mod:`sxtseg.phantom` draws, so a calibrated phantom
is unchanged; a real cell's cytoplasm may sit a few per cent off, which the
default model tolerates (``docs/models.md``).  A value that fills more than 5 %
of the sample exactly (a zero or constant background outside the
reconstructed region) is set aside as padding and kept out of the peaks.

When the volume has no ice (a crop inside the cell), the two lowest large
peaks are cytoplasm and nucleus, 14 % apart instead of a factor of two: data
already in LAC (or per-voxel attenuation) are then kept as they are, with a
``no_ice_reference`` flag; integer grey values cannot be calibrated from the
volume alone: the two peaks are then mapped to cytoplasm and nucleus with a
``low_confidence`` flag and a warning, and with fewer than two peaks the
record says so (confidence 0, an ``uncalibrated`` flag and a warning)
instead of guessing silently.

Examples
--------
>>> import numpy as np
>>> from sxtseg import make_infected_cell
>>> from sxtseg.calibration import calibrate
>>> image, classes, _, _ = make_infected_cell((48, 128, 128), seed=4)
>>> grey = image.with_data((image.data * 40000 + 2000).round().astype("uint16"))
>>> lac, record = calibrate(grey)
>>> record.method, record.input_kind
('two-point', 'grey')
>>> round(record.scale * 40000, 2), abs(round(record.offset + 2000 * record.scale, 2))
(1.0, 0.0)
>>> bool(abs(float(lac.data[classes.data == 1].mean().compute()) - 0.22) < 0.01)
True
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .errors import InvalidArgumentError, InvalidDataError
from .volume import Volume

__all__ = ["REFERENCE_LAC", "CalibrationRecord", "CalibrationWarning", "calibrate", "parse_calibration"]

log = logging.getLogger("sxtseg.calibration")

#: Published LAC (1/µm, water window ~517 eV) of the references ``auto`` looks for; sources in the module docstring.
REFERENCE_LAC: dict[str, float] = {"ice": 0.109, "cytoplasm": 0.22, "nucleus": 0.25}

# a peak pair (low, high) is ice and cytoplasm when high/low exceeds this in offset-free units (LAC,
# attenuation): ice/cytoplasm is ~2 (1.6 with +0.08 offset), cytoplasm/nucleus ~1.14
_ICE_RATIO_MIN = 1.35
# ... and, for grey values of unknown offset, when the pair's gap is at least _ICE_SEPARATION_MIN times
# the sum of the two peaks' half widths at half maximum and their ratio at least _GREY_RATIO_MIN (for
# positive grey values), or the gap at least _ICE_SEPARATION_SURE widths whatever the ratio (a large
# offset).  Measured on phantoms at noise 0.04: ice/cytoplasm 13 widths, cytoplasm/nucleus 2.0
_ICE_SEPARATION_MIN = 2.0
_ICE_SEPARATION_SURE = 4.0
_GREY_RATIO_MIN = 1.25
_PADDING_FRACTION = 0.05  # one exact value over this fraction of the sample is padding
_PEAK_AREA_MIN = 0.03  # a "large" peak holds at least this fraction of the sample
# ice above the lowest large peak needs a cytoplasm peak of at least this fraction (the wedge cells
# of bench_wedge_calibration.py: 29-36 %; a mitochondrial peak over the cytoplasm of a crop: ~4 %)
_ALTERNATIVE_CYTOPLASM_AREA_MIN = 0.15
_SAMPLE_VOXELS = 4_000_000


class CalibrationWarning(UserWarning):
    """A calibration that should not be trusted blindly (low confidence, no reference found)."""


@dataclass
class CalibrationRecord:
    """What :func:`calibrate` did: ``lac = scale * value + offset``, and why.

    Attributes
    ----------
    method : str
        ``"two-point"`` (two references found in the volume), ``"unit"`` (a
        unit conversion only), ``"identity"`` (kept as it was), ``"none"``
        (not calibrated, on request), ``"explicit"`` (``scale``/``offset``
        given), ``"reference"`` (regions of known material given) or
        ``"guess"`` (no reference found; see ``confidence``).
    input_kind : str
        What the input was read as: ``"lac"`` (1/µm), ``"attenuation"``
        (per voxel), ``"grey"`` (integer or arbitrary grey values) or
        ``"unknown"``.
    scale, offset : float
        The linear map to LAC: scale in (1/µm) per grey value, offset in 1/µm.
    references : list of dict
        The references used: ``name``, ``value`` (grey value found) and
        ``lac_1_per_um`` (what it was mapped to).
    confidence : float or None
        0 (no trust) to 1; None where nothing was estimated.
    flags : list of str
        Quality flags (``no_ice_reference``, ``uncalibrated``,
        ``low_confidence``, ``padding_excluded``...).
    notes : list of str
        One sentence per flag or decision.
    padding_value : float or None
        A constant background value set aside, and ``padding_fraction`` its share.
    """

    method: str
    input_kind: str
    scale: float = 1.0
    offset: float = 0.0
    references: list = field(default_factory=list)
    confidence: float | None = None
    flags: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    padding_value: float | None = None
    padding_fraction: float = 0.0

    def to_dict(self) -> dict:
        """A JSON-ready dict (what ``summary.json`` and file metadata hold)."""
        return {**asdict(self), "formula": "lac_1_per_um = scale * value + offset"}

    @classmethod
    def from_dict(cls, record: dict) -> "CalibrationRecord":
        """The record back from :meth:`to_dict`."""
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in record.items() if k in names})

    def to_lac(self, values):
        """``values`` (a NumPy or dask array) in LAC: float32 ``scale * value + offset``.

        The one place the arithmetic is written, so that a block calibrated
        on a dask worker equals, to the bit, the same block of :meth:`apply`.
        """
        data = values.astype(np.float32)
        if not (self.scale == 1.0 and self.offset == 0.0):
            data = data * np.float32(self.scale) + np.float32(self.offset)
        return data

    def apply(self, volume: Volume) -> Volume:
        """``volume`` in LAC: float32, lazily ``scale * value + offset``, the record in its metadata."""
        data = self.to_lac(volume.data)
        metadata = {**volume.metadata, "calibration": self.to_dict()}
        if self.method != "none":
            metadata.update(quantity="linear_absorption_coefficient", intensity_unit="1/um")
        return volume.with_data(data, metadata=metadata)

    def summary(self) -> str:
        """One line for the command line: what was done, and how sure it is."""
        if self.method == "none":
            return "calibration: none (grey values used as they are)"
        refs = ", ".join(f"{r['name']} {r['value']:.6g} -> {r['lac_1_per_um']:.3f}" for r in self.references)
        text = (f"calibration: {self.method} ({self.input_kind} input{'; ' + refs if refs else ''}): "
                f"LAC = {self.scale:.6g} x value {'+' if self.offset >= 0 else '-'} {abs(self.offset):.6g} 1/um")
        if self.confidence is not None:
            text += f", confidence {self.confidence:.2f}"
        if self.flags:
            text += " [" + ", ".join(self.flags) + "]"
        return text


def parse_calibration(text: str) -> Any:
    """``"auto"``, ``"none"`` or ``"SCALE,OFFSET"`` (the ``--calibration`` option) as :func:`calibrate` takes it.

    Examples
    --------
    >>> parse_calibration("auto"), parse_calibration("2.5e-5,-0.05")
    ('auto', (2.5e-05, -0.05))
    """
    text = str(text).strip().lower()
    if text in ("auto", "none"):
        return text
    try:
        scale, offset = (float(v) for v in text.split(","))
    except ValueError:
        raise InvalidArgumentError(f"calibration must be auto, none or SCALE,OFFSET, not {text!r}") from None
    if not (math.isfinite(scale) and math.isfinite(offset)) or scale == 0:
        raise InvalidArgumentError(f"calibration scale must be a nonzero finite number, got {text!r}")
    return scale, offset


def _sample(volume: Volume, voxels: int = _SAMPLE_VOXELS) -> tuple[np.ndarray, np.ndarray]:
    """Whole z slices, evenly spaced (every other voxel in y and x when large), in float64, raw and smoothed.

    In-plane 3x3 means lower the noise by three so that the peaks are sharp.
    """
    from scipy import ndimage

    nz, ny, nx = volume.shape
    step_yx = 2 if ny * nx > 4 * 512 * 512 else 1
    per_slice = (ny // step_yx) * (nx // step_yx)
    n_slices = int(np.clip(voxels // max(per_slice, 1), 1, nz))
    z = np.unique(np.linspace(0, nz - 1, n_slices).round().astype(int))
    sample = np.asarray(volume.data[z, ::step_yx, ::step_yx].compute(), np.float64)
    if not np.isfinite(sample).all():
        raise InvalidDataError(f"{volume._name()}: the volume holds NaN or infinite values; "
                               "calibration (and segmentation) need finite grey values")
    return sample, ndimage.uniform_filter(sample, size=(1, 3, 3), mode="nearest")


def _input_kind(volume: Volume, values: np.ndarray) -> str:
    if volume.dtype.kind in "biu":
        return "grey"
    quantity = str(volume.metadata.get("quantity", ""))
    if quantity == "linear_absorption_coefficient":
        return "lac"
    if quantity == "attenuation_per_voxel":
        return "attenuation"
    low, median, high = np.percentile(values, [0.5, 50, 99.5])
    if volume.voxel_size is not None:
        edge_um = float(volume.voxel_size_in("um")[-1])
        if -0.005 < low and high < 0.1 and 0.03 < median / edge_um < 1.5:
            return "attenuation"
    if -0.3 < low and high < 5 and 0.02 < median < 1.5:
        return "lac"
    return "grey"


def _padding(sample: np.ndarray) -> tuple[float | None, float]:
    """The exact value filling over 5 % of the sample (a constant background), if any.

    Counted on every k-th z slice of the sample, k = its voxel count // 2 million (at least 1;
    so all of a sample of 4 million voxels or fewer).  Sorting those voxels (``np.unique``) took
    most of the calibration's time, so the candidates come from a probe of 32,768 of them drawn
    at random (a fixed seed; random, so that no layout of the padding lines up with a stride):
    a value over 5 % of the voxels is over 2 % of the probe (25 standard deviations above
    that), and each candidate is then counted exactly.  A zero padding is reported as +0.0.
    """
    values = sample[:: max(1, sample.size // 2_000_000)].reshape(-1)
    probe = values[np.random.default_rng(0).integers(0, values.size, 32_768)]
    probe_values, probe_counts = np.unique(probe, return_counts=True)
    candidates = probe_values[probe_counts > 0.02 * probe_counts.sum()]
    best, best_count = None, 0
    for candidate in candidates:  # ascending, so a tie keeps the lower value, as np.argmax over np.unique did
        count = int(np.count_nonzero(values == candidate))
        if count > best_count:
            best, best_count = float(candidate) + 0.0, count  # + 0.0: -0.0 and 0.0 are one value, reported as 0.0
    fraction = best_count / values.size
    return (best, float(fraction)) if fraction > _PADDING_FRACTION else (None, 0.0)


def _peaks(values: np.ndarray, low: float, high: float) -> list[dict]:
    """Large peaks of the histogram of ``values`` between ``low`` and ``high`` (their 0.2 and 99.8th
    percentiles), low to high: position, area fraction and half width."""
    from scipy.ndimage import gaussian_filter1d

    from .histogram_peaks import find_peaks, peak_widths

    if not high > low:
        return [{"value": float(low), "area": 1.0, "width": 0.0}]
    counts, edges = np.histogram(values, bins=400, range=(low, high))
    density = gaussian_filter1d(counts.astype(float), 2.0)
    centres = (edges[:-1] + edges[1:]) / 2
    index = find_peaks(density, min_prominence=0.01 * density.max())
    if len(index) == 0:
        return []
    widths = peak_widths(density, index, rel_height=0.5)
    # each peak's area: voxels between the minima that separate it from its neighbours
    bounds = [0] + [int(index[k] + np.argmin(density[index[k] : index[k + 1]])) for k in range(len(index) - 1)]
    bounds.append(len(density))
    peaks = []
    bin_width = edges[1] - edges[0]
    for k, i in enumerate(index):
        area = counts[bounds[k] : bounds[k + 1]].sum() / counts.sum()
        # refine the position: mean of the sample within half a half-width of the mode
        half = max(widths[k] * bin_width / 2, bin_width)
        near = values[np.abs(values - centres[i]) <= half / 2]
        position = float(np.mean(near)) if near.size > 10 else float(centres[i])
        peaks.append({"value": position, "area": float(area), "width": float(half)})
    # neighbours closer than half their half widths are one population split by noise (rings, streaks)
    merged = [peaks[0]]
    for peak in peaks[1:]:
        last = merged[-1]
        if peak["value"] - last["value"] < 0.5 * (last["width"] + peak["width"]):
            main = last if last["area"] >= peak["area"] else peak
            merged[-1] = {"value": main["value"], "area": last["area"] + peak["area"],
                          "width": max(last["width"], peak["width"],
                                       (peak["value"] + peak["width"] - last["value"] + last["width"]) / 2)}
        else:
            merged.append(peak)
    return merged


def _ice_and_cytoplasm(peaks: list[dict], offset_free: bool) -> tuple[dict, dict, float] | None:
    """The ice and cytoplasm peaks among the large peaks of a histogram (low to high), or None.

    Cytoplasm is the largest peak above the ice (partial-volume voxels of the
    blurred cell boundary can leave small bumps between the two).  Ice is
    the lowest large peak, unless a higher peak that holds more voxels than
    every peak below it also makes such a pair: then the one of those that
    holds the most voxels, provided its cytoplasm peak holds at least 15 % of
    the voxels.  (A missing wedge of ±80-85° darkens the ice beside
    the cell into a small peak of its own, 7-11 % of the voxels, below the
    true ice; taken for ice, as it was before 2026-12-07, it put the true ice
    on cytoplasm: scale x3-3.7, Dice 0 on tuning cells, or no ice found.)

    A pair (low, high) can be ice and cytoplasm when, in offset-free units
    (LAC, attenuation), high/low is at least ``_ICE_RATIO_MIN`` (ice and
    cytoplasm are about a factor of 2 apart) or the two are
    ``_ICE_SEPARATION_SURE`` half widths apart; for grey values of unknown
    offset, when they are that far apart, or ``_ICE_SEPARATION_MIN`` apart
    with a ratio of at least ``_GREY_RATIO_MIN``.

    Returns
    -------
    tuple or None
        (ice peak, cytoplasm peak, their separation in half widths).
    """
    def pair(i):
        low = peaks[i]
        if i + 1 >= len(peaks):
            return None
        high = max(peaks[i + 1:], key=lambda p: p["area"])
        separation = (high["value"] - low["value"]) / max(low["width"] + high["width"], 1e-12)
        if offset_free:
            is_ice = (low["value"] > 0 and high["value"] / low["value"] >= _ICE_RATIO_MIN) or (
                separation >= _ICE_SEPARATION_SURE)
        else:
            ratio_ok = low["value"] <= 0 or high["value"] / low["value"] >= _GREY_RATIO_MIN
            is_ice = separation >= _ICE_SEPARATION_SURE or (separation >= _ICE_SEPARATION_MIN and ratio_ok)
        return (low, high, separation) if is_ice else None

    # ice candidates: the lowest peak, and each peak holding more voxels than all below it
    candidates, most = [], -1.0
    for i, peak in enumerate(peaks):
        if peak["area"] > most:
            candidates.append(i)
            most = peak["area"]
    for i in reversed(candidates):  # the candidate holding the most voxels first
        found = pair(i)
        # above the lowest peak, the cytoplasm must be a major population, not a dense organelle's peak
        if found is not None and (i == 0 or found[1]["area"] >= _ALTERNATIVE_CYTOPLASM_AREA_MIN):
            return found
    return None


def _two_point(ice: float, cytoplasm: float) -> tuple[float, float]:
    scale = (REFERENCE_LAC["cytoplasm"] - REFERENCE_LAC["ice"]) / (cytoplasm - ice)
    return scale, REFERENCE_LAC["ice"] - scale * ice


def _auto(volume: Volume) -> CalibrationRecord:
    raw, smooth = _sample(volume)
    kind = _input_kind(volume, raw)
    record = CalibrationRecord(method="two-point", input_kind=kind)
    # unit conversion first: attenuation per voxel -> 1/um
    unit_scale = 1.0
    if kind == "attenuation":
        unit_scale = 1.0 / float(volume.voxel_size_in("um")[-1])
    padding, fraction = _padding(raw)
    keep = None if padding is None else raw != padding
    if padding is not None:
        record.padding_value, record.padding_fraction = padding, round(fraction, 4)
        record.flags.append("padding_excluded")
        record.notes.append(f"{fraction:.0%} of the sampled voxels hold exactly {padding:g} (a constant "
                            "background outside the reconstruction): left out of the histogram")
        # the in-plane mean next to padding mixes it in; use the raw values there
        from scipy import ndimage

        near = ndimage.binary_dilation(~keep, structure=np.ones((1, 3, 3), bool))
        smooth = np.where(near, raw, smooth)
    values = (smooth.ravel() if keep is None else smooth[keep]) * unit_scale
    if values.size < 1000:
        return _uncalibrated(record, raw, "fewer than 1000 voxels besides the padding")
    range_low, range_high, top = (float(v) for v in np.percentile(values, [0.2, 99.8, 99.5]))  # one partition
    peaks = [p for p in _peaks(values, range_low, range_high) if p["area"] >= _PEAK_AREA_MIN]
    pair = _ice_and_cytoplasm(peaks, offset_free=kind in ("lac", "attenuation"))
    if pair is not None:
        low, high, separation = pair
        scale, offset = _two_point(low["value"], high["value"])
        record.scale, record.offset = scale * unit_scale, offset
        record.references = [
            {"name": "ice", "value": low["value"] / unit_scale, "lac_1_per_um": REFERENCE_LAC["ice"]},
            {"name": "cytoplasm", "value": high["value"] / unit_scale,
             "lac_1_per_um": REFERENCE_LAC["cytoplasm"]}]
        # trust: peaks well apart (in their own widths) and a plausible mapped range
        mapped_top = scale * top + offset
        confidence = min(1.0, separation / 4.0)
        if not 0.25 < mapped_top < 2.0:
            confidence *= 0.5
            record.notes.append(f"the 99.5th percentile maps to {mapped_top:.2f} 1/um, outside the "
                                "0.25-2 1/um of cells")
        record.confidence = round(float(confidence), 3)
        if confidence < 0.5:
            record.flags.append("low_confidence")
            record.notes.append("the ice and cytoplasm peaks overlap: the calibration is uncertain")
        return record
    # no ice reference
    record.flags.append("no_ice_reference")
    record.notes.append("no ice peak found (a crop inside the cell, or the cell fills the field of view)")
    if kind in ("lac", "attenuation"):
        record.method = "unit" if kind == "attenuation" else "identity"
        record.scale, record.offset = unit_scale, 0.0
        record.confidence = 0.5
        record.notes.append(f"the values look like {'per-voxel attenuation' if kind == 'attenuation' else 'LAC'}"
                            " and are used as LAC without a two-point check")
        return record
    if len(peaks) >= 2:
        # grey values without ice: the two lowest large peaks as cytoplasm and nucleus, only 0.03 1/um
        # apart, so the scale is uncertain: flagged
        low, high = peaks[0], peaks[1]
        gap = REFERENCE_LAC["nucleus"] - REFERENCE_LAC["cytoplasm"]
        record.scale = gap / (high["value"] - low["value"])
        record.offset = REFERENCE_LAC["cytoplasm"] - record.scale * low["value"]
        record.references = [
            {"name": "cytoplasm", "value": low["value"], "lac_1_per_um": REFERENCE_LAC["cytoplasm"]},
            {"name": "nucleus", "value": high["value"], "lac_1_per_um": REFERENCE_LAC["nucleus"]}]
        record.confidence = 0.25
        record.flags.append("low_confidence")
        record.notes.append("calibrated on the cytoplasm and nucleus peaks (0.03 1/um apart): check it, or "
                            "give --calibration SCALE,OFFSET")
        return record
    return _uncalibrated(record, raw, "integer grey values need two references (ice and cytoplasm)")


def _uncalibrated(record: CalibrationRecord, raw: np.ndarray, why: str) -> CalibrationRecord:
    """No trustworthy calibration: a loud, flagged guess (the median to cytoplasm, 99.5 % to 0.45 1/um)."""
    median, top = np.percentile(raw, [50, 99.5])
    record.method = "guess"
    record.flags.append("uncalibrated")
    record.confidence = 0.0
    if top > median:
        record.scale = (0.45 - REFERENCE_LAC["cytoplasm"]) / (top - median)
        record.offset = REFERENCE_LAC["cytoplasm"] - record.scale * median
    record.notes.append(f"cannot calibrate: {why}; guessed a map (median to cytoplasm), do not trust the "
                        "segmentation; give --calibration SCALE,OFFSET or reference regions")
    return record


def _reference(volume: Volume, references) -> CalibrationRecord:
    """Least-squares line through (mean grey value of each region, its LAC)."""
    points = []
    for k, item in enumerate(references):
        try:
            region, lac = item
        except (TypeError, ValueError):
            raise InvalidArgumentError("references must be (region, lac_1_per_um) pairs; a region is a tuple "
                                       "of slices or a boolean mask of the volume's shape") from None
        if isinstance(region, Volume):
            region = region.data
        if isinstance(region, tuple) or isinstance(region, slice):
            values = volume.data[region]
        else:
            mask = np.asarray(region, bool) if not hasattr(region, "compute") else region.astype(bool)
            if tuple(mask.shape) != tuple(volume.shape):
                raise InvalidArgumentError(f"reference {k}: mask shape {tuple(mask.shape)} is not the volume's "
                                           f"{volume.shape}")
            values = volume.data[mask]
        mean = float(np.asarray(values.mean().compute() if hasattr(values, "compute") else values.mean()))
        if not math.isfinite(mean):
            raise InvalidArgumentError(f"reference {k}: the region is empty or holds no finite values")
        points.append((mean, float(lac)))
    if not points:
        raise InvalidArgumentError("method='reference' needs at least one (region, lac_1_per_um) pair")
    grey = np.array([p[0] for p in points])
    lac = np.array([p[1] for p in points])
    record = CalibrationRecord(method="reference", input_kind="grey" if volume.dtype.kind in "biu" else "unknown",
                               references=[{"name": f"region {k}", "value": g, "lac_1_per_um": l}
                                           for k, (g, l) in enumerate(points)], confidence=1.0)
    if len(points) == 1:
        if grey[0] == 0:
            raise InvalidArgumentError("one reference region of mean 0 cannot set a scale")
        record.scale, record.offset = float(lac[0] / grey[0]), 0.0
        record.notes.append("one reference: scale only, the offset is assumed to be 0")
    else:
        if np.ptp(grey) == 0:
            raise InvalidArgumentError("the reference regions have the same mean grey value")
        record.scale, record.offset = (float(v) for v in np.polyfit(grey, lac, 1))
    return record


def calibrate(volume: Volume, method: Any = "auto", *, scale: float | None = None, offset: float | None = None,
              references=None, warn: bool = True) -> tuple[Volume, CalibrationRecord]:
    """A volume in LAC (1/µm) and the record of how it was calibrated.

    Parameters
    ----------
    volume : Volume
        A 3-D tomogram in any grey-value convention (LAC, per-voxel
        attenuation, integer grey values), lazy or in memory.
    method : str, tuple, dict or CalibrationRecord
        ``"auto"`` (recognise the convention and find ice and cytoplasm in
        the volume, see the module docstring), ``"none"`` (keep the values;
        for data known to be in the model's convention), ``"explicit"``
        (with ``scale`` and ``offset``), ``"reference"`` (with
        ``references``), a ``(scale, offset)`` pair, or a record (or its
        dict) from an earlier call, applied as it is.
    scale, offset : float
        ``lac = scale * value + offset`` for ``"explicit"``: scale in 1/µm per
        grey value, offset in 1/µm.
    references : list of (region, float)
        For ``"reference"``: regions of known material, each a tuple of
        slices or a boolean mask of the volume's shape, with its LAC in
        1/µm (e.g. a box of ice with 0.109).  One region sets the scale
        (offset 0), two or more a least-squares line.
    warn : bool
        Emit a :class:`CalibrationWarning` when the calibration is flagged
        ``uncalibrated`` or ``low_confidence``.

    Returns
    -------
    calibrated : Volume
        float32 LAC, lazy when the input is; ``metadata["calibration"]``
        holds the record.
    record : CalibrationRecord

    Raises
    ------
    InvalidDataError
        The volume holds NaN or infinite values.
    InvalidArgumentError
        An unknown method, or missing or bad ``scale``/``offset``/``references``.

    Examples
    --------
    >>> import numpy as np
    >>> from sxtseg import Volume
    >>> vol = Volume(np.full((4, 8, 8), 1000, np.uint16), voxel_size=30.0)
    >>> lac, record = calibrate(vol, scale=2e-4, offset=0.0)
    >>> record.method, round(float(lac.data[0, 0, 0].compute()), 4)
    ('explicit', 0.2)
    """
    if not isinstance(volume, Volume):
        raise TypeError("volume must be a sxtseg.Volume")
    if isinstance(method, dict):
        method = CalibrationRecord.from_dict(method)
    if isinstance(method, CalibrationRecord):
        record = method
    elif isinstance(method, (tuple, list)) and len(method) == 2 and not isinstance(method[0], str):
        scale, offset = (float(v) for v in method)
        record = CalibrationRecord(method="explicit", input_kind="unknown", scale=scale, offset=offset)
    elif method == "explicit" or (method == "auto" and scale is not None):
        if scale is None:
            raise InvalidArgumentError("method='explicit' needs scale= (and offset=)")
        record = CalibrationRecord(method="explicit", input_kind="unknown", scale=float(scale),
                                   offset=float(offset or 0.0))
    elif method == "none":
        record = CalibrationRecord(method="none", input_kind="unknown")
    elif method == "reference":
        record = _reference(volume, references or [])
    elif method == "auto":
        if volume.ndim != 3:
            raise InvalidArgumentError(f"{volume._name()}: automatic calibration needs a 3-D volume, "
                                       f"got shape {volume.shape}")
        record = _auto(volume)
    else:
        raise InvalidArgumentError(f"unknown calibration {method!r}: use 'auto', 'none', 'explicit', "
                                   "'reference' or (scale, offset)")
    if not (math.isfinite(record.scale) and math.isfinite(record.offset)) or record.scale == 0:
        raise InvalidArgumentError(f"calibration scale must be a nonzero finite number, got {record.scale!r}")
    if warn and ({"uncalibrated", "low_confidence"} & set(record.flags)):
        warnings.warn(f"{volume._name()}: {record.summary()}: {'; '.join(record.notes)}", CalibrationWarning,
                      stacklevel=2)
    log.info("%s: %s", volume._name(), record.summary())
    return record.apply(volume), record

"""The imaging model: from a noiseless LAC volume to what a cryo-SXT reconstruction looks like.

:class:`ImagingModel` turns the phantom's exact LAC image into a
reconstruction-like one: a Gaussian PSF, the missing wedge of a limited tilt
range, photon-count and correlated noise, ring artefacts, and the output
unit (LAC, attenuation per voxel or integer grey values).
:func:`~sxtseg.phantom.make_infected_cell` applies one (its ``imaging``
argument); its older ``blur`` and ``noise`` arguments are the same as
:meth:`ImagingModel.from_blur_noise`.  :meth:`ImagingModel.random` draws one
for domain-randomised training.

Examples
--------
>>> import numpy as np
>>> from sxtseg.phantom import ImagingModel
>>> lac = np.full((16, 32, 32), 0.109, np.float32)
>>> lac[6:10, 14:18, 14:18] = 0.65
>>> model = ImagingModel(tilt_range_deg=(-60, 60), output_unit="grey", dtype="uint16")
>>> grey = model.apply(lac, 30.0, rng=0)
>>> grey.dtype.name, grey.shape
('uint16', (16, 32, 32))
>>> model.output_metadata(30.0)["intensity_from_lac"]
{'scale': 5000.0, 'offset': 1000.0}
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
from scipy import ndimage

from ..errors import InvalidArgumentError, ShapeError
from .arguments import check_rng, check_voxel_size, is_number
from .fields import smooth_field
from .lac import LAC

__all__ = ["ImagingModel"]

OUTPUT_UNITS = ("lac", "attenuation", "grey")
_FLOAT_DTYPES = ("float32", "float64")
_INTEGER_DTYPES = ("uint8", "uint16", "int16", "uint32", "int32")
_Z_BLUR_FACTOR = 1.5  # the older blur argument: sigma_z = 1.5 * sigma_xy
_N_RINGS = 16
_RING_WIDTH_VOXELS = (0.5, 1.5)  # Gaussian sigma of a ring's radial profile, in x voxels

# ranges drawn by ImagingModel.random
RANDOM_PSF_SIGMA_XY_VOXELS = (0.5, 2.5)
RANDOM_PSF_Z_OVER_XY = (1.0, 3.0)
RANDOM_MAX_TILT_DEG = (55.0, 90.0)
RANDOM_PHOTON_NOISE = (0.01, 0.12)
RANDOM_CORRELATED_NOISE = (0.0, 0.02)
RANDOM_CORRELATED_NOISE_LENGTH_NM = (100.0, 500.0)
RANDOM_RING_AMPLITUDE = (0.0, 0.01)


def _check_field(name: str, value: Any, *, positive: bool = False) -> float:
    if not is_number(value) or not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise InvalidArgumentError(f"ImagingModel.{name} must be a finite number {bound}, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class ImagingModel:
    """How a noiseless LAC volume is imaged: PSF, missing wedge, noise, rings, output unit.

    :meth:`apply` runs, in this order: the PSF blur, the missing wedge (on the
    noiseless image), photon-count noise, correlated noise, ring artefacts,
    then the conversion to the output unit.  All physical quantities are in
    nm, degrees and 1/µm, so one model means the same at any voxel size.  The
    defaults, at 30 nm voxels, are the older ``make_infected_cell`` defaults
    (``blur=1``, ``noise=0.04``).

    Parameters
    ----------
    psf_sigma_xy_nm, psf_sigma_z_nm : float
        Gaussian sigma (nm) of the point spread function in the yx plane and
        along z (the optical axis).  The depth of field of the zone plate is
        part of ``psf_sigma_z_nm``: there is no separate depth-of-field field.
        0 disables the blur along those axes.
    tilt_range_deg : tuple of 2 float or None
        Lowest and highest tilt angle (degrees, -90 to 90) of the tilt
        series, about the y axis.  The frequencies no projection measured (the
        missing wedge) are zeroed in Fourier space: in the kz-kx plane, those
        whose direction lies outside the tilt range measured from the kx axis
        (for ``(-60, 60)``: ``|kz| > |kx| tan 60°``), the same for every ky.
        This elongates objects along z and adds the streaks seen around dense
        objects.  The image is padded (mirrored) by at least a quarter of its
        size along z and x first, so nothing wraps around.  ``None`` (or
        ``(-90, 90)``): full coverage, no wedge.
    photon_noise : float
        Relative photon-count noise: Gaussian with standard deviation
        ``photon_noise * sqrt(LAC * LAC_cytoplasm)`` (1/µm), so it grows with
        the square root of the signal and equals ``photon_noise`` times the
        cytoplasm LAC on cytoplasm.  0: none.
    correlated_noise : float
        Standard deviation (1/µm) of an added smooth random field, e.g.
        reconstruction noise or uneven ice.  0: none.
    correlated_noise_length_nm : float
        Its correlation length (nm), > 0.
    ring_amplitude : float
        Peak amplitude (1/µm) of ring artefacts: 16 concentric rings around
        the rotation axis (the line along y through the centre of the xz
        plane), constant along y, at random radii, each with a random
        amplitude of 30-100 % of this, a random sign and a Gaussian radial
        profile 0.5-1.5 voxels wide.  0: none.
    output_unit : {"lac", "attenuation", "grey"}
        ``"lac"``: linear absorption coefficients (1/µm).  ``"attenuation"``:
        LAC times the voxel edge along x (the detector pixel) in µm, the
        attenuation per voxel.  ``"grey"``: ``grey_scale * LAC + grey_offset``
        rounded to integers and clipped to the range of ``dtype``.
    grey_scale, grey_offset : float
        Grey value per 1/µm (> 0) and grey value of LAC 0, for ``"grey"``.
    dtype : str
        Output dtype: ``"float32"`` or ``"float64"`` for every unit;
        ``"uint8"``, ``"uint16"``, ``"int16"``, ``"uint32"`` or ``"int32"``
        for ``"grey"`` only.
    psf_sigma_voxels : tuple of 3 float or None
        PSF sigma (z, y, x) in voxels of the volume it is applied to, instead
        of the nm fields (which are then only a record).  Set by
        :meth:`from_blur_noise`, whose blur is defined in voxels, so it
        reproduces the older ``blur`` argument exactly; ``None`` otherwise.

    Raises
    ------
    InvalidArgumentError
        If a field is out of range (the message names it).

    Examples
    --------
    >>> model = ImagingModel(psf_sigma_xy_nm=40.0, psf_sigma_z_nm=80.0, tilt_range_deg=(-60, 60))
    >>> model.psf_sigma_in_voxels(40.0)
    (2.0, 1.0, 1.0)
    >>> ImagingModel.from_blur_noise(1.0, 0.04, 30.0).psf_sigma_in_voxels(30.0)
    (1.5, 1.0, 1.0)
    """

    psf_sigma_xy_nm: float = 30.0
    psf_sigma_z_nm: float = 45.0
    tilt_range_deg: tuple[float, float] | None = None
    photon_noise: float = 0.04
    correlated_noise: float = 0.0
    correlated_noise_length_nm: float = 200.0
    ring_amplitude: float = 0.0
    output_unit: str = "lac"
    grey_scale: float = 5000.0
    grey_offset: float = 1000.0
    dtype: str = "float32"
    psf_sigma_voxels: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        def store(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)  # the dataclass is frozen

        for name in ("psf_sigma_xy_nm", "psf_sigma_z_nm", "photon_noise", "correlated_noise", "ring_amplitude"):
            store(name, _check_field(name, getattr(self, name)))
        store("correlated_noise_length_nm", _check_field("correlated_noise_length_nm",
                                                         self.correlated_noise_length_nm, positive=True))
        store("grey_scale", _check_field("grey_scale", self.grey_scale, positive=True))
        if not is_number(self.grey_offset) or not math.isfinite(self.grey_offset):
            raise InvalidArgumentError(
                f"ImagingModel.grey_offset must be a finite number, not {self.grey_offset!r}"
            )
        store("grey_offset", float(self.grey_offset))
        if self.tilt_range_deg is not None:
            tilt = self.tilt_range_deg
            if (
                not isinstance(tilt, (tuple, list))
                or len(tilt) != 2
                or not all(is_number(t) and math.isfinite(t) for t in tilt)
                or not -90 <= tilt[0] < tilt[1] <= 90
            ):
                raise InvalidArgumentError(
                    f"ImagingModel.tilt_range_deg must be None or (lowest, highest) with "
                    f"-90 <= lowest < highest <= 90 degrees, not {tilt!r}"
                )
            store("tilt_range_deg", (float(tilt[0]), float(tilt[1])))
        if self.output_unit not in OUTPUT_UNITS:
            raise InvalidArgumentError(
                f"ImagingModel.output_unit must be one of {', '.join(OUTPUT_UNITS)}, not {self.output_unit!r}"
            )
        allowed = _FLOAT_DTYPES + (_INTEGER_DTYPES if self.output_unit == "grey" else ())
        if self.dtype not in allowed:
            raise InvalidArgumentError(
                f"ImagingModel.dtype must be one of {', '.join(allowed)} for output_unit "
                f"{self.output_unit!r}, not {self.dtype!r}"
            )
        if self.psf_sigma_voxels is not None:
            sigma = self.psf_sigma_voxels
            if not isinstance(sigma, (tuple, list)) or len(sigma) != 3:
                raise InvalidArgumentError(
                    f"ImagingModel.psf_sigma_voxels must be None or three numbers (z, y, x), not {sigma!r}"
                )
            store("psf_sigma_voxels", tuple(_check_field("psf_sigma_voxels", s) for s in sigma))

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_blur_noise(cls, blur_voxels: float, noise: float, voxel_size_nm: float | tuple) -> "ImagingModel":
        """The imaging of the older ``blur`` and ``noise`` arguments of ``make_infected_cell``.

        A Gaussian of sigma ``(1.5 blur, blur, blur)`` voxels (z, y, x), no
        missing wedge, photon noise ``noise``, LAC output: bit for bit what
        ``make_infected_cell(blur=blur_voxels, noise=noise)`` always did.

        Parameters
        ----------
        blur_voxels : float
            Gaussian sigma in the yx plane, in voxels (>= 0).
        noise : float
            Relative photon noise (>= 0), see :attr:`photon_noise`.
        voxel_size_nm : float or tuple of 3 float
            Voxel size (nm) the blur is defined on; it sets the nm fields,
            which are kept as a record.

        Examples
        --------
        >>> model = ImagingModel.from_blur_noise(1.0, 0.04, 30.0)
        >>> model.psf_sigma_xy_nm, model.psf_sigma_z_nm, model.psf_sigma_voxels
        (30.0, 45.0, (1.5, 1.0, 1.0))
        """
        if not is_number(blur_voxels) or not math.isfinite(blur_voxels) or blur_voxels < 0:
            raise InvalidArgumentError(f"blur_voxels must be a finite number >= 0, not {blur_voxels!r}")
        blur = float(blur_voxels)
        v = check_voxel_size(voxel_size_nm)
        z_blur = _Z_BLUR_FACTOR * blur
        return cls(
            psf_sigma_xy_nm=blur * float(v[2]),
            psf_sigma_z_nm=z_blur * float(v[0]),
            photon_noise=noise,
            psf_sigma_voxels=(z_blur, blur, blur),
        )

    @classmethod
    def random(cls, rng: np.random.Generator | int, voxel_size_nm: float | tuple, **fields: Any) -> "ImagingModel":
        """A randomised imaging model for domain-randomised training.

        Drawn uniformly (``v`` is the voxel edge along x):

        ======================  =====================================
        ``psf_sigma_xy_nm``     0.5-2.5 voxels: 0.5 v to 2.5 v
        ``psf_sigma_z_nm``      1-3 times ``psf_sigma_xy_nm``
        ``tilt_range_deg``      ``(-t, t)``, t in 55-90 degrees
        ``photon_noise``        0.01-0.12
        ``correlated_noise``    0-0.02 /µm, length 100-500 nm
        ``ring_amplitude``      0-0.01 /µm
        ======================  =====================================

        Parameters
        ----------
        rng : numpy.random.Generator or int
            The generator, or a seed: the same seed gives the same model.
        voxel_size_nm : float or tuple of 3 float
            Voxel size (z, y, x) in nm, which the PSF range is relative to.
        **fields
            Fields to set instead of drawing or defaulting them, e.g.
            ``output_unit="grey"``.

        Examples
        --------
        >>> ImagingModel.random(7, 30.0) == ImagingModel.random(7, 30.0)
        True
        >>> 55 <= ImagingModel.random(7, 30.0).tilt_range_deg[1] <= 90
        True
        """
        rng = check_rng("rng", rng)
        pixel = float(check_voxel_size(voxel_size_nm)[2])
        sigma_xy = rng.uniform(*RANDOM_PSF_SIGMA_XY_VOXELS) * pixel
        sigma_z = sigma_xy * rng.uniform(*RANDOM_PSF_Z_OVER_XY)
        tilt = rng.uniform(*RANDOM_MAX_TILT_DEG)
        drawn = dict(
            psf_sigma_xy_nm=sigma_xy,
            psf_sigma_z_nm=sigma_z,
            tilt_range_deg=(-tilt, tilt),
            photon_noise=rng.uniform(*RANDOM_PHOTON_NOISE),
            correlated_noise=rng.uniform(*RANDOM_CORRELATED_NOISE),
            correlated_noise_length_nm=rng.uniform(*RANDOM_CORRELATED_NOISE_LENGTH_NM),
            ring_amplitude=rng.uniform(*RANDOM_RING_AMPLITUDE),
        )
        return cls(**{**drawn, **fields})

    # ------------------------------------------------------------ queries
    def psf_sigma_in_voxels(self, voxel_size_nm: float | tuple) -> tuple[float, float, float]:
        """The PSF sigma (z, y, x) in voxels of this voxel size (nm)."""
        if self.psf_sigma_voxels is not None:
            return self.psf_sigma_voxels
        v = check_voxel_size(voxel_size_nm)
        vz, vy, vx = (float(x) for x in v)
        return (self.psf_sigma_z_nm / vz, self.psf_sigma_xy_nm / vy, self.psf_sigma_xy_nm / vx)

    def output_metadata(self, voxel_size_nm: float | tuple) -> dict[str, Any]:
        """``quantity``, ``intensity_unit`` and ``intensity_from_lac`` of the output.

        ``intensity_from_lac`` holds ``scale`` and ``offset`` with
        ``value = scale * LAC + offset`` (before rounding), so
        ``LAC = (value - offset) / scale``.
        """
        if self.output_unit == "lac":
            quantity, unit, scale, offset = "linear_absorption_coefficient", "1/um", 1.0, 0.0
        elif self.output_unit == "attenuation":
            quantity, unit, scale, offset = "attenuation_per_voxel", "1", _pixel_um(voxel_size_nm), 0.0
        else:
            quantity, unit, scale, offset = "grey_value", "arbitrary", self.grey_scale, self.grey_offset
        mapping = {"scale": scale, "offset": offset}
        return {"quantity": quantity, "intensity_unit": unit, "intensity_from_lac": mapping}

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-friendly dict (tuples become lists); ``ImagingModel(**d)`` rebuilds it."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }

    # ------------------------------------------------------------ imaging
    def apply(
        self, lac_image: np.ndarray, voxel_size_nm: float | tuple, rng: np.random.Generator | int
    ) -> np.ndarray:
        """Image a noiseless LAC volume; the input is left unchanged.

        Parameters
        ----------
        lac_image : (Z, Y, X) ndarray
            Linear absorption coefficients, 1/µm.
        voxel_size_nm : float or tuple of 3 float
            Voxel size (nm), one number or (z, y, x).
        rng : numpy.random.Generator or int
            Source of the noise and ring artefacts (or a seed for one).

        Returns
        -------
        (Z, Y, X) ndarray
            In :attr:`output_unit`, of :attr:`dtype`.

        Examples
        --------
        >>> import numpy as np
        >>> lac = np.full((8, 8, 8), 0.2, np.float32)
        >>> out = ImagingModel(photon_noise=0, output_unit="attenuation").apply(lac, 50.0, rng=1)
        >>> round(float(out.mean()), 6)  # 0.2 /µm times 0.05 µm
        0.01
        """
        image = np.asarray(lac_image)
        if image.ndim != 3:
            raise ShapeError(f"ImagingModel.apply needs a (Z, Y, X) volume, not an array of shape {image.shape}")
        v = check_voxel_size(voxel_size_nm)
        rng = check_rng("rng", rng)
        image = image.astype(np.float32, copy=False)
        sigma = self.psf_sigma_in_voxels(v)
        if any(s > 0 for s in sigma):
            image = ndimage.gaussian_filter(image, sigma=sigma, mode="nearest", truncate=3.0)
        else:
            image = image.copy()  # the noise below is added in place
        tilt = self.tilt_range_deg
        if tilt is not None and not (tilt[0] <= -90 and tilt[1] >= 90):
            image = _missing_wedge(image, v, tilt)
        if self.photon_noise > 0:
            _add_photon_noise(rng, image, self.photon_noise)
        if self.correlated_noise > 0:
            noise = smooth_field(rng, image.shape, v, self.correlated_noise_length_nm)
            noise *= np.float32(self.correlated_noise / max(float(noise.std()), 1e-12))
            image += noise
        if self.ring_amplitude > 0:
            image += _rings(rng, image.shape, v, self.ring_amplitude)[:, None, :]
        return self._convert(image, v)

    def _convert(self, image: np.ndarray, v: np.ndarray) -> np.ndarray:
        """LAC (float32) to the output unit and dtype."""
        if self.output_unit == "lac":
            return image.astype(self.dtype, copy=False)
        if self.output_unit == "attenuation":
            return (image * np.float32(_pixel_um(v))).astype(self.dtype, copy=False)
        grey = np.rint(image.astype(np.float64) * self.grey_scale + self.grey_offset)
        if self.dtype in _INTEGER_DTYPES:
            limits = np.iinfo(self.dtype)
            np.clip(grey, limits.min, limits.max, out=grey)
        return grey.astype(self.dtype)


def _pixel_um(voxel_size_nm: float | tuple | np.ndarray) -> float:
    """The voxel edge along x (the detector pixel) in µm."""
    return float(check_voxel_size(voxel_size_nm)[2]) / 1000.0


def _add_photon_noise(rng: np.random.Generator, image: np.ndarray, noise: float) -> None:
    """Add noise of standard deviation ``noise * sqrt(signal * LAC_cytoplasm)``, in place.

    A few slices at a time to save memory.
    """
    for z0 in range(0, image.shape[0], 16):
        slab = image[z0 : z0 + 16]
        deviation = np.sqrt(np.maximum(slab, 0) * np.float32(LAC["cytoplasm"] * noise**2))
        slab += deviation * rng.standard_normal(slab.shape, dtype=np.float32)


def _padded_length(n: int) -> int:
    """At least a quarter of ``n`` more on each side, rounded up to a fast FFT length."""
    return scipy.fft.next_fast_len(n + 2 * max(n // 4, 4), real=True)


def _missing_wedge(image: np.ndarray, v: np.ndarray, tilt_range_deg: tuple[float, float]) -> np.ndarray:
    """Zero the Fourier components outside the measured tilt range (tilt axis y).

    The filter acts in the kz-kx plane only, so the transform runs over z and
    x (every y line alike), on the image mirrored by at least a quarter of
    its size on each side along those axes.
    """
    nz, _, nx = image.shape
    size_z, size_x = _padded_length(nz), _padded_length(nx)
    before_z, before_x = (size_z - nz) // 2, (size_x - nx) // 2
    pad = ((before_z, size_z - nz - before_z), (0, 0), (before_x, size_x - nx - before_x))
    padded = np.pad(image, pad, mode="symmetric")
    spectrum = scipy.fft.rfftn(padded, axes=(0, 2), workers=-1)
    del padded
    kz = scipy.fft.fftfreq(size_z, d=v[0])[:, None]  # cycles per nm
    kx = scipy.fft.rfftfreq(size_x, d=v[2])[None, :]  # >= 0
    angle = np.degrees(np.arctan2(kz, kx))  # direction from the kx axis, -90 to 90 degrees
    lowest, highest = tilt_range_deg
    measured = (angle >= lowest) & (angle <= highest)
    on_kz_axis = np.broadcast_to((kx == 0) & (kz != 0), measured.shape)
    measured[on_kz_axis] = lowest <= -90 or highest >= 90  # +90 and -90 are the same direction
    measured[0, 0] = True  # the mean is in every projection
    spectrum *= measured[:, None, :]
    filtered = scipy.fft.irfftn(spectrum, s=(size_z, size_x), axes=(0, 2), workers=-1)
    return np.ascontiguousarray(filtered[before_z : before_z + nz, :, before_x : before_x + nx], dtype=np.float32)


def _rings(rng: np.random.Generator, shape: tuple[int, int, int], v: np.ndarray, amplitude: float) -> np.ndarray:
    """(Z, X) float32 ring pattern around the rotation axis (y, through the centre of the xz plane)."""
    nz, _, nx = shape
    z = (np.arange(nz) - (nz - 1) / 2) * v[0]
    x = (np.arange(nx) - (nx - 1) / 2) * v[2]
    radius = np.hypot(z[:, None], x[None, :])
    centres = rng.uniform(0, radius.max(), _N_RINGS)
    widths = rng.uniform(*_RING_WIDTH_VOXELS, _N_RINGS) * v[2]
    heights = amplitude * rng.uniform(0.3, 1.0, _N_RINGS) * rng.choice([-1.0, 1.0], _N_RINGS)
    pattern = np.zeros_like(radius)
    for centre, width, height in zip(centres, widths, heights):
        pattern += height * np.exp(-0.5 * ((radius - centre) / width) ** 2)
    return pattern.astype(np.float32)

"""The one data model of sxtseg: a lazy array with its voxel size and provenance.

A :class:`Volume` wraps a dask array (nothing is read until asked), the size
of one voxel along each axis, the unit of that size, the axis names and a
metadata dictionary that records where the data came from.  Images, class
label volumes and instance label volumes are all Volumes.

Examples
--------
>>> import numpy as np
>>> from sxtseg import Volume
>>> vol = Volume(np.zeros((4, 6, 8), np.float32), voxel_size=(30.0, 30.0, 30.0))
>>> vol.shape, vol.unit
((4, 6, 8), 'nm')
>>> vol.physical_shape
(120.0, 180.0, 240.0)
>>> vol[1:3, :, ::2].voxel_size
(30.0, 30.0, 60.0)
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np

from .errors import ShapeError, VoxelSizeError
from .units import convert_length, normalize_unit

__all__ = ["Volume"]

_AXES = ("zyx", "yx")


class _Shared:
    """A NumPy array as ``dask.array.from_array`` sees an h5py dataset: read in chunks, never copied.

    dask (2026.8 here) copies every ``from_array`` argument that has a ``copy``
    method, which doubles the memory of a Volume made from a NumPy array and
    costs 0.6 s per 512 MiB.  Chunks are read-only views, so no computation
    can write into the caller's array through the Volume.
    """

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        view = self.array[key]
        if isinstance(view, np.ndarray) and np.may_share_memory(view, self.array):  # bounds check, O(1)
            view = view.view()
            view.flags.writeable = False
        return view


def dask_view(array: np.ndarray, chunks: Any = "auto") -> da.Array:
    """A dask array over a NumPy array, without copying it (see :class:`_Shared`)."""
    meta = np.empty((0,) * array.ndim, array.dtype)
    # name=False: a random graph name instead of hashing every byte (0.2 s per 64 MiB)
    return da.from_array(_Shared(array), chunks=chunks, name=False, asarray=True, meta=meta)


def _as_dask(data: Any) -> da.Array:
    if isinstance(data, da.Array):
        return data
    if isinstance(data, np.ndarray):
        return dask_view(data)
    if hasattr(data, "__array__") or hasattr(data, "shape"):
        return da.from_array(data, chunks="auto", name=False)
    raise TypeError(f"Volume data must be a dask or NumPy array, not {type(data).__name__}")


def _runs_here(data: da.Array, kwargs: dict) -> bool:
    """Whether dask would compute ``data`` in this process's memory (the threaded or synchronous scheduler).

    Only then can its chunks be stored into a NumPy array of this process: a
    distributed or multiprocessing scheduler would write into copies of it.
    """
    import dask.local
    import dask.threaded
    from dask.base import get_scheduler

    return get_scheduler(scheduler=kwargs.get("scheduler"), collections=[data]) in (dask.threaded.get,
                                                                                    dask.local.get_sync)


def block_by_block(vol: "Volume") -> bool:
    """Whether functions should work on ``vol`` block by block: a lazy volume of several chunks.

    A volume already in memory (:attr:`Volume.in_memory`) or of one chunk is
    processed as one array, which is faster whenever it fits.
    """
    return vol.data.npartitions > 1 and not vol.in_memory


def _check_voxel_size(voxel_size: Any, ndim: int) -> tuple[float, ...] | None:
    if voxel_size is None:
        return None
    if np.isscalar(voxel_size):
        voxel_size = (voxel_size,) * ndim
    values = tuple(float(v) for v in voxel_size)
    if len(values) != ndim:
        raise VoxelSizeError(f"voxel_size {values} has {len(values)} entries for {ndim}-D data")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise VoxelSizeError(f"voxel_size {values} must be positive and finite")
    return values


@dataclass
class Volume:
    """A lazy 3D volume (or 2D image) with physical voxel size and metadata.

    Parameters
    ----------
    data : dask.array.Array or numpy.ndarray
        The voxels, (Z, Y, X) for volumes or (Y, X) for images.  A NumPy array
        is wrapped in a dask array (shared, not copied).  Big-endian data
        (``>f4``, from old files) is converted to the machine's byte order.
    voxel_size : tuple of float, float or None
        Size of one voxel along each axis, in ``unit``.  A single number means
        isotropic voxels.  ``None`` means unknown: measurements in physical
        units then refuse to run rather than assume 1.
    unit : {"nm", "um", "mm"}
        Unit of ``voxel_size``: nanometres for SXT, millimetres for CT/CXR.
    axes : {"zyx", "yx"}
        Axis names, one letter per dimension.
    metadata : dict
        Free-form provenance: ``source`` (path, reader, dataset), the original
        header values, processing history.

    Examples
    --------
    >>> import numpy as np
    >>> vol = Volume(np.arange(24, dtype=np.uint8).reshape(2, 3, 4), voxel_size=25.0)
    >>> vol.voxel_size
    (25.0, 25.0, 25.0)
    >>> int(vol.to_numpy().sum())
    276
    """

    data: da.Array
    voxel_size: tuple[float, ...] | None = None
    unit: str = "nm"
    axes: str = "zyx"
    metadata: dict[str, Any] = field(default_factory=dict)
    # (dask wrapper, the NumPy array it wraps): lets to_numpy() hand back the array without a copy
    _in_memory: tuple[da.Array, np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        wrapped = self.data if isinstance(self.data, np.ndarray) else None
        if wrapped is not None and not wrapped.dtype.isnative:  # big-endian (an old file): one native copy
            wrapped = self.data = wrapped.astype(wrapped.dtype.newbyteorder("="))
        self.data = _as_dask(self.data)
        if not self.data.dtype.isnative:  # kernels (Numba) and PyTorch need native byte order
            self.data = self.data.astype(self.data.dtype.newbyteorder("="))
        if wrapped is not None:
            self._in_memory = (self.data, wrapped)
        if self.axes not in _AXES:
            raise ShapeError(f"axes must be one of {_AXES}, not {self.axes!r}")
        if self.data.ndim != len(self.axes):
            raise ShapeError(
                f"data has {self.data.ndim} dimensions {self.data.shape} but axes are {self.axes!r}"
            )
        self.unit = normalize_unit(self.unit)
        self.voxel_size = _check_voxel_size(self.voxel_size, self.data.ndim)
        self.metadata = dict(self.metadata)

    # ------------------------------------------------------------------ shape
    @property
    def shape(self) -> tuple[int, ...]:
        """Number of voxels along each axis."""
        return tuple(int(s) for s in self.data.shape)

    @property
    def ndim(self) -> int:
        """Number of dimensions (3 for volumes, 2 for images)."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        """NumPy dtype of the voxels."""
        return self.data.dtype

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        """Dask chunk sizes along each axis."""
        return self.data.chunks

    @property
    def nbytes(self) -> int:
        """Size of the voxel data in bytes, once loaded."""
        return int(self.data.nbytes)

    @property
    def physical_shape(self) -> tuple[float, ...] | None:
        """Extent along each axis in ``unit`` (shape times voxel size), or None."""
        if self.voxel_size is None:
            return None
        return tuple(n * v for n, v in zip(self.shape, self.voxel_size))

    def voxel_size_in(self, unit: str) -> tuple[float, ...]:
        """Voxel size converted to another length unit.

        Raises
        ------
        VoxelSizeError
            If the voxel size is unknown.
        """
        if self.voxel_size is None:
            raise VoxelSizeError(f"voxel size of {self._name()} is unknown")
        return tuple(convert_length(v, self.unit, unit) for v in self.voxel_size)

    # ------------------------------------------------------------ new volumes
    def with_data(self, data: Any, **changes: Any) -> "Volume":
        """A new Volume with other data and the same voxel size, unit, axes and metadata.

        Keyword arguments replace any other field, e.g. ``metadata=``.
        """
        fields = dict(
            voxel_size=self.voxel_size,
            unit=self.unit,
            axes=self.axes,
            metadata=copy.deepcopy(self.metadata),
        )
        fields.update(changes)
        return Volume(data, **fields)

    def rechunk(self, chunks: Any = "auto") -> "Volume":
        """The same volume with other dask chunks (see :meth:`dask.array.Array.rechunk`)."""
        return self.with_data(self.data.rechunk(chunks))

    def astype(self, dtype: Any) -> "Volume":
        """The same volume with voxels cast to ``dtype`` (lazily)."""
        return self.with_data(self.data.astype(dtype))

    def __getitem__(self, key: Any) -> "Volume":
        """Crop or subsample with slices; the voxel size and origin follow.

        Integer indices drop an axis (a z index of a volume gives a (Y, X)
        image).  Slice steps multiply the voxel size.  The offset of the new
        first voxel in the parent's voxel grid is accumulated in
        ``metadata["origin_voxel"]``.
        """
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
        if len(key) > self.ndim:
            raise IndexError(f"too many indices ({len(key)}) for a {self.ndim}-D volume")
        key = key + (slice(None),) * (self.ndim - len(key))
        voxel = list(self.voxel_size) if self.voxel_size is not None else None
        origin = list(self.metadata.get("origin_voxel", (0,) * self.ndim))
        keep_axes, new_voxel, new_origin = [], [], []
        for ax, (k, n) in enumerate(zip(key, self.shape)):
            if isinstance(k, (int, np.integer)):
                if not -n <= k < n:
                    raise IndexError(f"index {k} out of range for axis {self.axes[ax]} of size {n}")
                continue
            if not isinstance(k, slice):
                raise TypeError(f"Volume indices must be integers or slices, not {type(k).__name__}")
            start, _, step = k.indices(n)
            if step < 1:
                raise IndexError("negative slice steps would mirror the volume; use data[::-1] explicitly")
            keep_axes.append(self.axes[ax])
            new_origin.append(origin[ax] + start)
            if voxel is not None:
                new_voxel.append(voxel[ax] * step)
        axes = "".join(keep_axes)
        if axes not in _AXES:
            raise ShapeError(f"indexing {key} would leave axes {axes!r}; keep (z, y, x) or (y, x)")
        metadata = copy.deepcopy(self.metadata)
        metadata["origin_voxel"] = tuple(int(o) for o in new_origin)
        return Volume(
            self.data[key],
            voxel_size=tuple(new_voxel) if voxel is not None else None,
            unit=self.unit,
            axes=axes,
            metadata=metadata,
        )

    def isel(self, **indexers: Any) -> "Volume":
        """Index by axis name, e.g. ``vol.isel(z=slice(10, 20), x=slice(0, 64))``."""
        unknown = set(indexers) - set(self.axes)
        if unknown:
            raise ValueError(f"unknown axes {sorted(unknown)}; this volume has axes {self.axes!r}")
        return self[tuple(indexers.get(a, slice(None)) for a in self.axes)]

    def crop(self, start: tuple[int, ...], stop: tuple[int, ...]) -> "Volume":
        """Crop to the box ``[start, stop)`` in voxels (one value per axis)."""
        if len(start) != self.ndim or len(stop) != self.ndim:
            raise ShapeError(f"crop box needs {self.ndim} start and stop values")
        return self[tuple(slice(a, b) for a, b in zip(start, stop))]

    # ------------------------------------------------------------ loading
    def compute(self, **kwargs: Any) -> "Volume":
        """Load the voxels into memory and return them as a Volume.

        The returned Volume's dask array wraps one in-memory NumPy array with
        the same chunking, so later operations do not read the file again.
        Keyword arguments go to :func:`dask.compute` (``scheduler=``...).
        """
        array = self.to_numpy(**kwargs)
        loaded = self.with_data(dask_view(array, self.data.chunks))
        loaded._in_memory = (loaded.data, array)
        return loaded

    @property
    def in_memory(self) -> bool:
        """Whether the voxels are a NumPy array already in memory, so ``to_numpy()`` costs nothing.

        True for a Volume made from a NumPy array or returned by
        :meth:`compute`, whatever its dask chunks; functions such as
        :func:`sxtseg.measure` then work on the whole array at once instead of
        block by block.
        """
        return self._in_memory is not None and self._in_memory[0] is self.data

    def to_numpy(self, **kwargs: Any) -> np.ndarray:
        """Load the voxels and return them as a NumPy array.

        A Volume made from a NumPy array (and whose ``data`` was not replaced
        since) returns that array itself, read-only, without copying it.
        """
        if self.in_memory:
            view = self._in_memory[1].view()
            view.flags.writeable = False
            return view
        data = self.data
        if data.npartitions == 1 or not _runs_here(data, kwargs) or any(np.isnan(n) for c in data.chunks for n in c):
            return np.asarray(data.compute(**kwargs))
        # each chunk is written into the result as it is computed: dask's compute() would hold every
        # chunk and then concatenate them, twice the array's memory at its peak
        array = np.empty(data.shape, data.dtype)
        data.store(array, lock=False, **kwargs)
        return array

    # ------------------------------------------------------------ display
    def _name(self) -> str:
        source = self.metadata.get("source", {})
        return str(source.get("path", "<in-memory volume>")) if isinstance(source, dict) else str(source)

    def __repr__(self) -> str:
        size = "unknown" if self.voxel_size is None else "x".join(f"{v:g}" for v in self.voxel_size)
        chunks = "x".join(str(c[0]) for c in self.data.chunks)
        return (
            f"Volume(shape={self.shape}, dtype={self.dtype}, voxel_size={size} {self.unit}, "
            f"axes={self.axes!r}, chunks={chunks}, source={self._name()!r})"
        )


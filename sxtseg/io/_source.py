"""Lazy, picklable array sources that dask reads chunk by chunk.

Every reader wraps its file in an :class:`ArraySource`: an object with
``shape``, ``dtype``, ``ndim`` and ``__getitem__`` that reads only the voxels
asked for.  Sources hold a path, not an open file, so they pickle cheaply to
``dask.distributed`` workers; a source that keeps a handle open re-opens it
lazily in each process.  A failure while reading is re-raised as
:class:`~sxtseg.errors.CorruptFileError` naming the file and the voxels.
Voxels always come back in the machine's native byte order (``dtype`` is
native; ``stored_dtype`` is the file's): Numba kernels and PyTorch refuse
big-endian arrays.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

import dask.array as da
import numpy as np
from dask.base import tokenize

from ..errors import CorruptFileError, InvalidDataError, SxtsegError

__all__ = ["native_dtype", "ArraySource", "MemmapSource", "HandleSource", "to_dask", "slab_chunks", "check_finite"]


def native_dtype(dtype) -> np.dtype:
    """``dtype`` in the machine's byte order (``>f4`` becomes ``float32``)."""
    dtype = np.dtype(dtype)
    return dtype if dtype.isnative else dtype.newbyteorder("=")


class ArraySource:
    """Base class: a read-only array on disk, read lazily by slices."""

    reader = "base"

    def __init__(self, path: str | os.PathLike, shape: tuple[int, ...], dtype: Any):
        self.path = str(path)
        self.shape = tuple(int(s) for s in shape)
        self.stored_dtype = np.dtype(dtype)
        self.dtype = native_dtype(self.stored_dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _read(self, key: tuple) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            block = np.asarray(self._read(key))
            return block if block.dtype.isnative else block.astype(native_dtype(block.dtype))
        except SxtsegError:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised with the file named
            raise CorruptFileError(
                f"{self.path}: could not read voxels {key} ({type(exc).__name__}: {exc}); "
                "the file may be truncated or damaged"
            ) from exc


class MemmapSource(ArraySource):
    """Raw voxels at a byte offset of a file (NPY, MRC), memory-mapped per read."""

    reader = "memmap"

    def __init__(self, path, shape, dtype, offset: int, order: str = "C"):
        super().__init__(path, shape, dtype)
        self.offset = int(offset)
        self.order = order

    def _read(self, key):
        mm = np.memmap(self.path, dtype=self.stored_dtype, mode="r", offset=self.offset, shape=self.shape, order=self.order)
        try:
            return np.array(mm[key])  # copy out, so the mapping can be closed
        finally:
            del mm


class HandleSource(ArraySource):
    """A source that reads through an opened object (zarr array, HDF5 dataset).

    ``opener`` is a picklable callable returning ``(handle, array)`` where
    ``array[key]`` reads voxels and ``handle`` (may be None) has ``close()``.
    The handle is opened once per process and dropped when pickled.
    """

    reader = "handle"

    def __init__(self, path, shape, dtype, opener: Callable[[], tuple[Any, Any]]):
        super().__init__(path, shape, dtype)
        self.opener = opener
        self._opened: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    def _array(self):
        with self._lock:
            if self._opened is None:
                self._opened = self.opener()
            return self._opened[1]

    def _read(self, key):
        return self._array()[key]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_opened"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __del__(self):
        opened = getattr(self, "_opened", None)
        if opened is not None and opened[0] is not None:
            try:
                opened[0].close()
            except Exception:  # noqa: BLE001 - closing at interpreter exit may fail harmlessly
                pass


def _chunk_budget_bytes() -> int:
    import dask

    return int(dask.utils.parse_bytes(dask.config.get("array.chunk-size", "128MiB")))


def slab_chunks(shape: tuple[int, ...], dtype: Any, budget_bytes: int | None = None) -> tuple[int, ...]:
    """Chunks of whole (Y, X) planes stacked along z, about ``budget_bytes`` each.

    Files stored plane by plane (TIFF pages, raw MRC/NPY, contiguous HDF5)
    are read fastest this way: a chunk narrower than a plane would read the
    same pages again for each neighbouring chunk.  The depth is a power of
    two, so slabs line up with power-of-two chunks of the written OME-Zarr.
    Planes larger than the budget fall back to dask's automatic chunking.
    """
    budget = budget_bytes or _chunk_budget_bytes()
    itemsize = np.dtype(dtype).itemsize
    plane = int(np.prod(shape[1:])) * itemsize if len(shape) > 1 else itemsize
    if plane > budget:
        return da.core.normalize_chunks("auto", shape, dtype=dtype, limit=budget)
    depth = max(1, budget // max(plane, 1))
    depth = 1 << (depth.bit_length() - 1)  # a power of two, so slabs align with Zarr chunks
    return (min(depth, shape[0]), *shape[1:])


def to_dask(
    source: ArraySource,
    chunks: Any,
    *,
    native_chunks: tuple[int, ...] | None = None,
    token_extra: Any = None,
) -> da.Array:
    """Wrap a source in a dask array without reading it.

    ``chunks="auto"`` gives chunks aligned with ``native_chunks`` (Zarr,
    chunked HDF5) or whole-plane slabs (files stored plane by plane).
    """
    if isinstance(chunks, str) and chunks == "auto":
        if native_chunks is not None:
            chunks = da.core.normalize_chunks(
                "auto", source.shape, dtype=source.dtype, previous_chunks=native_chunks
            )
        elif source.ndim >= 2:
            chunks = slab_chunks(source.shape, source.dtype)
    try:
        mtime = os.stat(source.path).st_mtime_ns
    except OSError:
        mtime = None
    name = f"{source.reader}-" + tokenize(source.path, mtime, source.shape, str(source.dtype), token_extra)
    meta = np.empty((0,) * source.ndim, dtype=source.dtype)
    return da.from_array(source, chunks=chunks, name=name, lock=False, asarray=False, fancy=False, meta=meta)


def _raise_if_not_finite(block: np.ndarray, path: str, block_info=None) -> np.ndarray:
    if block.dtype.kind in "fc" and block.size and not np.isfinite(block).all():
        bad = int(block.size - np.count_nonzero(np.isfinite(block)))
        where = block_info[0]["array-location"] if block_info else "?"
        raise InvalidDataError(
            f"{path}: {bad} of {block.size} voxels in region {where} are NaN or infinite; "
            "fix the file or open it with allow_nan=True"
        )
    return block


def check_finite(data: da.Array, path: str) -> da.Array:
    """Refuse NaN/infinite voxels: check one chunk now, and every chunk as it is read.

    The chunk at the centre of the volume is read at once, so a NaN-filled
    file fails when it is opened; the rest is checked lazily, chunk by chunk,
    as the data is computed (no extra pass over the file).
    """
    if data.dtype.kind not in "fc" or data.size == 0:
        return data
    centre = tuple(len(c) // 2 for c in data.chunks)
    sample = np.asarray(data.blocks[centre].compute())
    finite = np.isfinite(sample)
    if not finite.all():
        fraction = 1.0 - finite.mean()
        raise InvalidDataError(
            f"{path}: {fraction:.1%} of the voxels in the central chunk are NaN or infinite"
            f"{' (the data is NaN-filled)' if fraction == 1.0 else ''}; "
            "fix the file or open it with allow_nan=True"
        )
    return data.map_blocks(_raise_if_not_finite, path=path, dtype=data.dtype, meta=data._meta)

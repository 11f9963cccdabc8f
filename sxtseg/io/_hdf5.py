"""HDF5 files (h5py): one dataset per volume, chosen with ``dataset=``.

The file is opened once per process and read chunk by chunk.  The voxel
size comes from the dataset's attributes (``element_size_um`` as written by
ilastik and Fiji, or ``voxel_size`` with ``unit``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ..errors import AmbiguousDatasetError, CorruptFileError
from ._opened import Opened
from ._source import HandleSource, to_dask
from ._zarr import attrs_voxel_size

SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".nxs")


def _open_dataset(path: str, name: str):
    import h5py

    fh = h5py.File(path, "r")
    return fh, fh[name]


def list_datasets(fh) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every dataset in an open HDF5 file, depth first."""
    import h5py

    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found.append(("/" + name, tuple(obj.shape)))

    fh.visititems(visit)
    return found


def read_hdf5(path: Path, chunks="auto", dataset: str | None = None) -> Opened:
    import h5py

    try:
        fh = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001
        raise CorruptFileError(f"{path}: not a readable HDF5 file ({exc})") from exc
    try:
        with fh:
            return _read_open_file(path, fh, chunks, dataset)
    except (AmbiguousDatasetError, CorruptFileError):
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file fails deep inside HDF5 in many ways
        raise CorruptFileError(f"{path}: damaged HDF5 file ({type(exc).__name__}: {exc})") from exc


def _read_open_file(path: Path, fh, chunks, dataset: str | None) -> Opened:
    import h5py

    datasets = list_datasets(fh)
    listing = ", ".join(f"{n} {s}" for n, s in datasets) or "no datasets"
    if dataset is None:
        candidates = [n for n, s in datasets if len(s) >= 2]
        if len(candidates) != 1:
            raise AmbiguousDatasetError(
                f"{path}: holds {len(candidates)} image datasets; choose one with dataset=: {listing}"
            )
        dataset = candidates[0]
    if dataset not in fh or not isinstance(fh[dataset], h5py.Dataset):
        raise AmbiguousDatasetError(f"{path}: has no dataset {dataset!r}; it holds: {listing}")
    dset = fh[dataset]
    shape, dtype, native = dset.shape, dset.dtype, dset.chunks
    attrs = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in dset.attrs.items()}
    compression = dset.compression
    source = HandleSource(path, shape, dtype, opener=partial(_open_dataset, str(path), dataset))
    source.reader = "hdf5"
    data = to_dask(source, chunks, native_chunks=native, token_extra=dataset)
    voxel_size, unit = attrs_voxel_size(attrs, len(shape))
    axes = {2: "yx", 3: "zyx"}.get(len(shape), "?" * len(shape))
    metadata = {
        "hdf5": {
            "dataset": dataset,
            "chunks": list(native) if native else None,
            "compression": compression,
            "attrs": {k: v for k, v in attrs.items() if isinstance(v, (int, float, str, list))},
        },
        "voxel_size_missing": None if voxel_size else "the HDF5 dataset's attributes record no voxel size",
    }
    return Opened(data=data, axes=axes, voxel_size=voxel_size, unit=unit, metadata=metadata)

"""Fingerprints of inputs and settings, so that an interrupted run resumes only on the same work.

A resumable stage (:func:`sxtseg.segment`, :func:`sxtseg.pipeline.run`)
writes a manifest when it starts and compares it with the one it finds when
started again: the input's *content* (a hash of a fixed strided sample of
the voxels, and the size and modification time of the file or files behind
it), the model's weights hash, every parameter that changes the output, and
the device and precision.  Names, shapes and dtypes alone are not enough: a
tomogram re-exported to the same path, or another cell of the same shape,
has them all in common.

Examples
--------
>>> import numpy as np
>>> from sxtseg import Volume
>>> from sxtseg.fingerprint import changes, content_fingerprint
>>> a = content_fingerprint(Volume(np.zeros((4, 8, 8), np.float32), voxel_size=30.0))
>>> b = content_fingerprint(Volume(np.ones((4, 8, 8), np.float32), voxel_size=30.0))
>>> changes({"input": a}, {"input": b})
['input.sample_sha256 differs']
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SAMPLE_VOXELS", "sample_step", "strided_sample", "content_fingerprint", "file_fingerprint",
           "changes", "explain"]

#: Voxels in the strided sample that is hashed (and that segment() normalises with): about 4 million.
SAMPLE_VOXELS = 4e6
_METADATA_FILES = {"zarr.json", ".zarray", ".zattrs", ".zgroup"}


def sample_step(volume) -> int:
    """Stride along every axis that leaves about :data:`SAMPLE_VOXELS` voxels of ``volume`` (a Volume or an array)."""
    size = int(np.prod(volume.shape))
    return max(1, int(round((size / SAMPLE_VOXELS) ** (1 / len(volume.shape)))))


def strided_sample(volume) -> np.ndarray:
    """Every :func:`sample_step`-th voxel along each axis, starting at 0 (one read of the volume).

    ``volume`` is a Volume, a dask array or a NumPy array.
    """
    from .volume import Volume

    data = volume.data if isinstance(volume, Volume) else volume
    sample = data[(slice(None, None, sample_step(volume)),) * len(volume.shape)]
    return np.asarray(sample.compute() if hasattr(sample, "compute") else sample)


def file_fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """Size (bytes) and modification time (ns) of a file, or of the files a folder's format keeps.

    For a folder (Zarr, a stack of TIFFs) the count, total size and latest
    modification time of its metadata files and TIFF slices (two levels
    deep) stand for it; the chunks themselves are covered by the sample hash.
    """
    path = Path(path)
    if not path.exists():
        return {"path": str(path), "exists": False}
    if path.is_file():
        stat = path.stat()
        return {"path": str(path), "size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    files = [p for p in [*path.iterdir(), *(q for d in path.iterdir() if d.is_dir() for q in d.iterdir())]
             if p.is_file() and (p.name in _METADATA_FILES or p.name.lower().endswith((".tif", ".tiff")))]
    stats = [p.stat() for p in files]
    return {"path": str(path), "files": len(files), "size_bytes": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}


def content_fingerprint(volume, sample: np.ndarray | None = None) -> dict[str, Any]:
    """What identifies a volume's content: shape, dtype, the file behind it and a hash of a voxel sample.

    Parameters
    ----------
    volume : Volume
        The input.
    sample : ndarray, optional
        Its :func:`strided_sample`, when the caller has read it already
        (``segment`` does, for normalisation); read here otherwise.

    Returns
    -------
    dict
        ``shape``, ``dtype``, ``sample_sha256`` (of the sample's bytes and
        the stride), and ``file`` (:func:`file_fingerprint`) when the volume
        was opened from a file.
    """
    if sample is None:
        sample = strided_sample(volume)
    digest = hashlib.sha256()
    digest.update(f"{sample.shape}{sample.dtype.str}{sample_step(volume)}".encode())
    digest.update(np.ascontiguousarray(sample).tobytes())
    result: dict[str, Any] = {"shape": list(volume.shape), "dtype": str(volume.dtype),
                              "sample_sha256": digest.hexdigest()}
    path = (volume.metadata.get("source") or {}).get("path")
    if path:
        result["file"] = file_fingerprint(path)
    return result


def changes(previous: Any, current: Any, prefix: str = "") -> list[str]:
    """What differs between two manifests, as ``"key.path: old -> new"`` lines (hashes shortened).

    Examples
    --------
    >>> changes({"model": "a" * 64, "halo": [4, 8, 8]}, {"model": "b" * 64, "halo": [4, 8, 8]})
    ['model differs']
    >>> changes({"device": {"type": "cpu"}}, {"device": {"type": "cuda"}})
    ["device.type: 'cpu' -> 'cuda'"]
    """
    if isinstance(previous, dict) and isinstance(current, dict):
        lines = []
        for key in sorted(set(previous) | set(current), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in previous:
                lines.append(f"{name}: new ({current[key]!r})")
            elif key not in current:
                lines.append(f"{name}: no longer given (was {previous[key]!r})")
            else:
                lines.extend(changes(previous[key], current[key], name))
        return lines
    if previous == current:
        return []
    if isinstance(previous, str) and isinstance(current, str) and max(len(previous), len(current)) >= 40:
        return [f"{prefix} differs"]  # hashes: the values say nothing to a reader
    return [f"{prefix}: {previous!r} -> {current!r}"]


#: Plain words for the changes a reader of a refusal cares about (other keys are shown as they are).
_PLAIN = {
    "input.sample_sha256": "the input's content differs (another volume, or the file was re-exported)",
    "input.mtime_ns": "the input file is another one or was modified since (its modification time differs)",
    "input.size_bytes": "the input file's size differs",
    "input.file.mtime_ns": "the input file was modified since (its modification time differs)",
    "input.file.size_bytes": "the input file's size differs",
    "model_sha256": "the model's weights differ",
}


def explain(previous: dict, current: dict, ignore=("input.name", "input.file.path", "input.path")) -> list[str]:
    """:func:`changes` between two manifests in plain words, leaving out keys that may change (a moved file).

    Examples
    --------
    >>> explain({"model_sha256": "a" * 64, "input": {"name": "a.mrc"}},
    ...         {"model_sha256": "b" * 64, "input": {"name": "b.mrc"}})
    ["the model's weights differ"]
    """
    lines = []
    for line in changes(previous, current):
        key = line.split(":")[0].removesuffix(" differs")
        if key in ignore:
            continue
        lines.append(_PLAIN.get(key, line))
    return list(dict.fromkeys(lines))  # size and time of one file: said once each

"""Checks of the phantom's arguments, each raising an :class:`~sxtseg.errors.SxtsegError` subclass (internal)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, ShapeError, VoxelSizeError


def is_number(value: Any) -> bool:
    """A real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_shape(shape: Any, min_side: int) -> tuple[int, int, int]:
    try:
        values = tuple(shape)
    except TypeError:
        raise ShapeError(f"phantom shape must be three integers (z, y, x), not {shape!r}") from None
    integers = all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in values)
    if len(values) != 3 or not integers:
        raise ShapeError(f"phantom shape must be three integers (z, y, x), not {shape!r}")
    if min(values) < min_side:
        raise ShapeError(f"phantom shape {values} is too small: every side needs at least {min_side} voxels")
    return tuple(int(n) for n in values)


def check_voxel_size(voxel_size_nm: Any) -> np.ndarray:
    """The voxel size as a float array (z, y, x) in nm, from one number or three."""
    if is_number(voxel_size_nm):
        values = (voxel_size_nm,) * 3
    elif isinstance(voxel_size_nm, (tuple, list, np.ndarray)) and len(voxel_size_nm) == 3:
        values = tuple(voxel_size_nm)
    else:
        raise VoxelSizeError(
            f"voxel_size_nm must be one positive number or three (z, y, x), in nm, not {voxel_size_nm!r}"
        )
    if not all(is_number(x) and math.isfinite(x) and x > 0 for x in values):
        raise VoxelSizeError(f"voxel_size_nm must be positive and finite, not {voxel_size_nm!r}")
    return np.array(values, dtype=float)


def check_count(name: str, value: Any, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        allowed = "None or an integer >= 0" if allow_none else "an integer >= 0"
        raise InvalidArgumentError(f"{name} must be {allowed}, not {value!r}")
    return int(value)


def check_nonnegative(name: str, value: Any) -> float:
    if not is_number(value) or not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"{name} must be a finite number >= 0, not {value!r}")
    return float(value)


def check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def check_seed(seed: Any) -> int:
    """The seed as an int; ``None`` draws fresh entropy (so it can be recorded)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidArgumentError(f"seed must be None or an integer >= 0, not {seed!r}")
    return int(seed)


def check_rng(name: str, rng: Any) -> np.random.Generator:
    """A Generator from a Generator or an integer seed >= 0."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise InvalidArgumentError(f"{name} must be a numpy.random.Generator or an integer seed >= 0, not {rng!r}")

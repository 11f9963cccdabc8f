"""Exceptions raised by sxtseg.

Every error that comes from bad input derives from :class:`SxtsegError`, so a
script can catch them all at once, and the command line turns them into a
one-line message and exit code 2.  Messages name the file (or argument) and
say what is wrong with it.
"""

from __future__ import annotations

__all__ = [
    "SxtsegError",
    "InvalidArgumentError",
    "InputNotFoundError",
    "UnsupportedFormatError",
    "CorruptFileError",
    "ShapeError",
    "InvalidDataError",
    "AmbiguousDatasetError",
    "VoxelSizeError",
    "OutputExistsError",
]


class SxtsegError(Exception):
    """Base class of every error sxtseg raises for bad input or arguments."""


class InvalidArgumentError(SxtsegError, ValueError):
    """An argument has a value outside its allowed range (a negative count, an unknown option)."""


class InputNotFoundError(SxtsegError, FileNotFoundError):
    """An input file or folder does not exist."""


class UnsupportedFormatError(SxtsegError, ValueError):
    """The file's suffix or content is not a format sxtseg reads or writes."""


class CorruptFileError(SxtsegError, OSError):
    """A file is truncated, or its header disagrees with its content."""


class ShapeError(SxtsegError, ValueError):
    """The data has the wrong number of dimensions or an unusable shape."""


class InvalidDataError(SxtsegError, ValueError):
    """The data holds values that cannot be analysed (NaN, infinity, wrong dtype)."""


class AmbiguousDatasetError(SxtsegError, KeyError):
    """A container (HDF5, Zarr group) holds several candidate arrays and none was chosen."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class VoxelSizeError(SxtsegError, ValueError):
    """A voxel size is missing, non-positive, or has an unknown unit."""


class OutputExistsError(SxtsegError, FileExistsError):
    """An output path exists (and ``overwrite`` was not given) or would replace an input."""

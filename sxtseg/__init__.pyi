from . import classes, errors, instances, io, morphometrics, phantom, units
from .classes import SXTClass
from .errors import (
    AmbiguousDatasetError,
    CorruptFileError,
    InputNotFoundError,
    InvalidArgumentError,
    InvalidDataError,
    OutputExistsError,
    ShapeError,
    SxtsegError,
    UnsupportedFormatError,
    VoxelSizeError,
)
from .io import open_volume, save_volume
from .instances import label_classes, split_touching
from .morphometrics import measure, summarize
from .phantom import make_infected_cell
from .volume import Volume

__all__ = [
    "AmbiguousDatasetError",
    "CorruptFileError",
    "InputNotFoundError",
    "InvalidArgumentError",
    "InvalidDataError",
    "OutputExistsError",
    "SXTClass",
    "ShapeError",
    "SxtsegError",
    "UnsupportedFormatError",
    "Volume",
    "VoxelSizeError",
    "classes",
    "errors",
    "instances",
    "io",
    "label_classes",
    "make_infected_cell",
    "measure",
    "morphometrics",
    "open_volume",
    "phantom",
    "save_volume",
    "split_touching",
    "summarize",
    "units",
]

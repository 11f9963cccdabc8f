from . import calibration, classes, compartments, errors, infer, instances, io, models, morphometrics, phantom, pipeline, quality, train, units, wedge
from .calibration import calibrate
from .infer import segment
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
from .phantom import ImagingModel, make_infected_cell
from .pipeline import run
from .volume import Volume

__all__ = [
    "AmbiguousDatasetError",
    "CorruptFileError",
    "ImagingModel",
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
    "calibrate",
    "calibration",
    "classes",
    "compartments",
    "errors",
    "infer",
    "instances",
    "io",
    "label_classes",
    "make_infected_cell",
    "measure",
    "models",
    "morphometrics",
    "open_volume",
    "phantom",
    "pipeline",
    "quality",
    "run",
    "save_volume",
    "segment",
    "split_touching",
    "summarize",
    "train",
    "units",
    "wedge",
]

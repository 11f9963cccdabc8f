"""A second look at DMV-class objects: a small 3-D network on a crop around each tells DMVs from look-alikes.

The segmentation network labels voxels by what they look like within its
window; lysosomes and late endosomes of a DMV's size and density (dense,
uniform vesicles 200-400 nm across) come out of it as DMVs, and so do pieces
of mitochondria and specks of cytoplasm under a wide PSF or a missing wedge.
Told by the whole object at once, the difference is clearer: a DMV is a
double membrane around a lumen lighter than it, a lysosome is brightest in
its centre.  Neither the network's own probabilities nor hand-made radial
profiles separated them well enough (``docs/benchmarks.md``, "Object
checks"); this check learns it from crops.

For every DMV-class object, :func:`object_crops` samples the calibrated LAC
(1/µm) and the object's own mask on a grid of :data:`CROP_VOXELS` points a
side, :data:`CROP_STEP_NM` apart (960 nm), centred on the object's centroid,
whatever the volume's voxel size.  A MONAI ``Classifier`` (four strided
residual convolutions, 0.36 M parameters, ``dmv_check.pt`` beside the
shipped segmentation weights) gives each crop a probability of being a DMV,
averaged over the 8 mirror images of the crop; an object under the
checkpoint's threshold becomes an ``other_vesicle`` (:func:`dmv_check_changes`).

What it was trained and validated on: synthetic phantoms only (seeds
8200-8399 for training, 8400-8439 to choose the threshold; voxels 25-40 nm,
the training script's randomised imaging, lysosomes, multivesicular bodies
and vacuoles in four cells of five), with the objects that ``sxtseg.run`` and
the shipped ``"default"`` model found in them (``examples/train_dmv_check.py``).
It is skipped, and says why, where it has not been shown to hold: a volume
not calibrated to LAC, voxels outside its training range (25-40 nm on every
axis, with a 10% margin: 22.5-44 nm), or another model than the one whose
objects it learnt.

Examples
--------
>>> import numpy as np
>>> from sxtseg import Volume
>>> lac = Volume(np.full((20, 20, 20), 0.22, np.float32), voxel_size=30.0)
>>> ids = np.zeros((20, 20, 20), np.uint32); ids[8:12, 8:12, 8:12] = 1
>>> import pandas as pd
>>> table = pd.DataFrame({"label": [1], "class_id": [6], "centroid_z_vox": [9.5],
...                       "centroid_y_vox": [9.5], "centroid_x_vox": [9.5]})
>>> object_crops(lac, Volume(ids, voxel_size=30.0), table).shape
(1, 2, 32, 32, 32)
"""

from __future__ import annotations

import functools
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .classes import SXTClass
from .errors import CorruptFileError
from .models.plain_unet import ResidualUnit, _convolution
from .volume import Volume

__all__ = ["CROP_STEP_NM", "CROP_VOXELS", "DMV_CHECK_WEIGHTS", "NETWORK", "PlainClassifier", "check_network",
           "dmv_check_changes", "dmv_probabilities", "load_dmv_check", "object_crops"]

#: Points per side of an object's crop.
CROP_VOXELS = 32
#: Spacing (nm) of the crop's points, whatever the volume's voxel size: 32 x 30 nm = 960 nm a side.
CROP_STEP_NM = 30.0
#: The shipped check's weights.
DMV_CHECK_WEIGHTS = Path(__file__).parent / "models" / "weights" / "checks" / "dmv_check.pt"
#: The network of the shipped check (and of ``examples/train_dmv_check.py``): MONAI ``Classifier`` options.
NETWORK = {"channels": [16, 32, 64, 64], "strides": [2, 2, 2, 2], "num_res_units": 1, "dropout": 0.1}

_MIRRORS = ((), (2,), (3,), (4,), (2, 3), (3, 4), (2, 4), (2, 3, 4))


class PlainClassifier(nn.Module):
    """MONAI's ``Classifier`` (strided residual units, then flatten and a linear layer) from ``torch.nn`` modules.

    Parameter names are MONAI's (``net.layer_0.conv.unit0.conv.weight``...,
    ``final.1.weight``), so a state dict of one loads into the other.
    """

    def __init__(self, shape, channels, strides, units: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential()
        size, cin = list(shape[1:]), shape[0]
        for i, (cout, stride) in enumerate(zip(channels, strides)):
            last = i == len(channels) - 1
            if units > 0:
                layer = ResidualUnit(3, cin, cout, stride, units, "batch", dropout, last_conv_only=last)
            else:
                layer = _convolution(3, cin, cout, stride, "batch", dropout, conv_only=last)
            self.net.add_module(f"layer_{i}", layer)
            size = [(n - 1) // stride + 1 for n in size]  # 3x3x3 kernels, padding 1
            cin = cout
        self.final = nn.Sequential(nn.Flatten(), nn.Linear(cin * int(np.prod(size)), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.net(x))


def object_crops(lac: Volume, instances: Volume, table: pd.DataFrame, labels=None) -> np.ndarray:
    """Crops of the LAC and of each object's mask about its centroid, on a 30 nm grid.

    Parameters
    ----------
    lac : Volume
        The calibrated image (1/µm), in memory or lazy.
    instances : Volume
        Instance labels of the same shape.
    table : pandas.DataFrame
        The objects' :func:`sxtseg.measure` rows (``label`` and
        ``centroid_{z,y,x}_vox``).
    labels : sequence of int, optional
        The objects to crop (default: every row of ``table``).

    Returns
    -------
    numpy.ndarray
        float32, shape (n, 2, 32, 32, 32): channel 0 the LAC (1/µm, linear
        interpolation, edge values past the volume's border), channel 1 the
        object's mask (1 inside, linearly interpolated, 0 past the border).
    """
    from scipy import ndimage

    rows = table.set_index("label")
    labels = list(rows.index) if labels is None else [int(label) for label in labels]
    voxel_nm = np.asarray(lac.voxel_size_in("nm"), float)
    offsets_nm = (np.arange(CROP_VOXELS) - (CROP_VOXELS - 1) / 2) * CROP_STEP_NM
    reach = np.ceil(offsets_nm[-1] / voxel_nm).astype(int) + 2  # voxels each side that interpolation reads
    shape = np.asarray(lac.shape)
    read_lac, read_ids = _box_reader(lac), _box_reader(instances)
    centres = rows.loc[labels, ["centroid_z_vox", "centroid_y_vox", "centroid_x_vox"]].to_numpy(float)
    out = np.zeros((len(labels), 2, CROP_VOXELS, CROP_VOXELS, CROP_VOXELS), np.float32)
    for k, (label, centre) in enumerate(zip(labels, centres)):
        lo = np.clip(np.floor(centre).astype(int) - reach, 0, shape)
        hi = np.clip(np.floor(centre).astype(int) + reach + 1, 0, shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        image = np.asarray(read_lac(box), np.float32)
        mask = (np.asarray(read_ids(box)) == label).astype(np.float32)
        axes = [centre[a] - lo[a] + offsets_nm / voxel_nm[a] for a in range(3)]
        coords = np.stack(np.meshgrid(*axes, indexing="ij"))
        out[k, 0] = ndimage.map_coordinates(image, coords, order=1, mode="nearest")
        out[k, 1] = ndimage.map_coordinates(mask, coords, order=1, mode="constant")
    return out


def _box_reader(volume: Volume):
    """A function box -> the voxels of ``volume`` in that box (slices), without dask's overhead where it can.

    A NumPy-backed volume is sliced directly, a lazy one of a single chunk
    is loaded once; otherwise each box is read on its own (about 3 ms of
    dask's overhead per box).
    """
    if volume.in_memory or volume.data.npartitions == 1:
        array = volume.to_numpy()
        return array.__getitem__
    return lambda box: volume.data[box].compute()


def check_network(spec: dict, monai: bool = False):
    """The check's network: MONAI's ``Classifier`` (``monai=True``, to train) or the same in plain PyTorch.

    ``import monai`` costs about 1.5 s and imports matplotlib's pyplot, which
    :func:`sxtseg.run` otherwise never needs; inference builds the network
    from :mod:`torch.nn` modules with MONAI's parameter names, so the
    checkpoint of one loads into the other and both compute the same
    function (``tests/test_dmv_check.py``), as :mod:`sxtseg.models.plain_unet`
    does for the U-Net.

    Parameters
    ----------
    spec : dict
        ``channels``, ``strides``, ``num_res_units`` and ``dropout``
        (:data:`NETWORK`); batch norm, 3x3x3 kernels, PReLU, one output.
    monai : bool
        Build MONAI's own class.

    Returns
    -------
    torch.nn.Module
        Maps (n, 2, 32, 32, 32) crops to (n, 1) logits.
    """
    shape = (2, CROP_VOXELS, CROP_VOXELS, CROP_VOXELS)
    channels, strides = list(spec["channels"]), list(spec["strides"])
    units, dropout = int(spec["num_res_units"]), float(spec["dropout"])
    if monai:
        from monai.networks.nets import Classifier

        return Classifier(in_shape=shape, classes=1, channels=channels, strides=strides, num_res_units=units,
                          norm="batch", dropout=dropout)
    return PlainClassifier(shape, channels, strides, units, dropout)


def load_dmv_check(path=None) -> tuple:
    """The check's network (in eval mode) and its checkpoint's record.

    Parameters
    ----------
    path : str or Path, optional
        A checkpoint written by ``examples/train_dmv_check.py`` (default: the
        shipped :data:`DMV_CHECK_WEIGHTS`).

    Returns
    -------
    network : torch.nn.Module
        Loaded once per process while the file is unchanged (shared: do not train it).
    record : dict
        ``threshold`` (probability under which an object is not a DMV),
        ``lac_range_1_per_um`` (the LAC mapped to 0-1 at the input),
        ``voxel_range_nm`` (training voxel sizes), ``segmentation_model_sha256``
        (the model whose objects it learnt), ``sha256`` (of the file) and
        ``training`` (seeds, counts, validation figures).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CorruptFileError
        ``path`` is not such a checkpoint (truncated, or another kind).
    """
    path = Path(path if path is not None else DMV_CHECK_WEIGHTS).resolve()
    stat = path.stat()
    network, record = _cached_check(str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    return network, dict(record)


@functools.lru_cache(maxsize=2)
def _cached_check(path: str, size: int, mtime_ns: int, inode: int) -> tuple:
    """The check loaded, cached on the file's path, size, modification time and inode (as the U-Nets are)."""
    data = Path(path).read_bytes()
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        network = check_network(checkpoint["network"])
        network.load_state_dict(checkpoint["state_dict"])
    except Exception as exc:  # not a checkpoint of this check: say which file and why
        raise CorruptFileError(f"{path}: not a DMV check checkpoint ({type(exc).__name__}: {exc})") from exc
    network.eval()
    record = {k: v for k, v in checkpoint.items() if k != "state_dict"}
    record["sha256"] = hashlib.sha256(data).hexdigest()
    return network, record


def dmv_probabilities(network, crops: np.ndarray, lac_range=(0.1, 0.4), batch: int = 128) -> np.ndarray:
    """Each crop's probability of being a DMV, averaged over its 8 mirror images.

    Parameters
    ----------
    network : torch.nn.Module
        From :func:`load_dmv_check`.
    crops : numpy.ndarray
        (n, 2, 32, 32, 32) from :func:`object_crops`.
    lac_range : (float, float)
        LAC (1/µm) mapped to 0 and 1 at the network's input.
    batch : int
        Crops per forward pass.

    Returns
    -------
    numpy.ndarray
        float64, shape (n,), in [0, 1].
    """
    if len(crops) == 0:
        return np.zeros(0)
    x = torch.from_numpy(np.ascontiguousarray(crops, np.float32)).clone()
    x[:, 0] = (x[:, 0] - lac_range[0]) / (lac_range[1] - lac_range[0])
    total = torch.zeros(len(x), dtype=torch.float64)
    with torch.inference_mode():
        for axes in _MIRRORS:
            for i in range(0, len(x), batch):
                xb = x[i:i + batch]
                xb = xb.flip(axes) if axes else xb
                total[i:i + batch] += torch.sigmoid(network(xb)[:, 0]).double()
    return (total / len(_MIRRORS)).numpy()


def dmv_check_changes(lac: Volume, instances: Volume, table: pd.DataFrame, *, calibrated: bool,
                      model_sha256: str | None, threshold: float | None = None,
                      weights=None) -> tuple[dict[int, int], dict]:
    """The DMV-class objects that the check calls other vesicles, and a record of what it did.

    Parameters
    ----------
    lac : Volume
        The calibrated image (1/µm).
    instances : Volume
        Instance labels.
    table : pandas.DataFrame
        Their :func:`sxtseg.measure` rows.
    calibrated : bool
        Whether ``lac`` is calibrated to LAC; when not, the check is skipped.
    model_sha256 : str or None
        sha256 of the segmentation model's checkpoint; the check is skipped
        for another model than the one its checkpoint names.
    threshold : float, optional
        Probability under which an object is not a DMV (default: the
        checkpoint's, chosen on its validation cells).
    weights : str or Path, optional
        Another checkpoint of the check (default: the shipped one).

    Returns
    -------
    changes : dict
        Instance label -> :attr:`SXTClass.OTHER_VESICLE`.
    record : dict
        ``to_other_vesicle`` (objects changed), ``checked`` (objects looked
        at), ``threshold``, ``sha256`` (of the check's weights) and
        ``skipped`` (the reason, when it was not made).
    """
    network, check = load_dmv_check(weights)
    threshold = float(check["threshold"] if threshold is None else threshold)
    record = {"threshold": threshold, "sha256": check["sha256"], "checked": 0, "to_other_vesicle": 0}
    low, high = check["voxel_range_nm"]
    voxel_nm = lac.voxel_size_in("nm")
    if not calibrated:
        reason = "grey values not calibrated to LAC"
    elif model_sha256 != check["segmentation_model_sha256"]:
        reason = "another segmentation model than the one whose objects it learnt"
    elif not all(low * 0.9 <= v <= high * 1.1 for v in voxel_nm):
        reason = (f"voxels of {', '.join(f'{v:g}' for v in voxel_nm)} nm, outside its training range "
                  f"({low:g}-{high:g} nm)")
    else:
        reason = None
    if reason is not None:
        return {}, {**record, "skipped": reason}
    labels = table.loc[table["class_id"] == SXTClass.DMV, "label"].to_numpy()
    crops = object_crops(lac, instances, table, labels)
    p = dmv_probabilities(network, crops, tuple(check["lac_range_1_per_um"]))
    changes = {int(label): int(SXTClass.OTHER_VESICLE) for label in labels[p < threshold]}
    return changes, {**record, "checked": int(len(labels)), "to_other_vesicle": len(changes)}

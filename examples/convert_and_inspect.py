"""Open a tomogram lazily, crop it, and save it as an OME-Zarr pyramid with labels.

Run it as it is (it makes its own data: a phantom infected cell written as an
MRC file, the format most SXT beamlines reconstruct to), or point it at your
own file:

    python examples/convert_and_inspect.py                 # phantom
    python examples/convert_and_inspect.py tomo.mrc out/   # your tomogram
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import sxtseg
from sxtseg.io import export_volume


def main(argv: list[str]) -> None:
    out_dir = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="sxtseg_example_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = {}
    if argv:
        path = Path(argv[0])
    else:
        image, classes, instances, objects = sxtseg.make_infected_cell(shape=(64, 320, 320), seed=1)
        path = export_volume(image, out_dir / "phantom.mrc", overwrite=True)
        labels = {"classes": classes, "instances": instances}
        print(f"phantom: {len(objects)} objects, of which {int((objects.class_name == 'dmv').sum())} DMVs")

    vol = sxtseg.open_volume(path)  # lazy: reads the header only
    print(vol)
    print("physical size:", vol.physical_shape, vol.unit)

    # crop the central half in y and x; the voxel size and the crop origin follow
    z, y, x = vol.shape
    crop = vol[:, y // 4 : 3 * y // 4, x // 4 : 3 * x // 4]
    print("crop:", crop.shape, "origin in the parent (voxels):", crop.metadata["origin_voxel"])

    out = sxtseg.save_volume(vol, out_dir / "cell.ome.zarr", labels=labels, overwrite=True, progress=True)
    coarsest = sxtseg.open_volume(out, level=-1)  # the last pyramid level
    levels = coarsest.metadata["ome"]["levels"]
    print(f"wrote {out}: {levels} levels; level {levels - 1} is {coarsest.shape} at {coarsest.voxel_size} {coarsest.unit}")


if __name__ == "__main__":
    main(sys.argv[1:])

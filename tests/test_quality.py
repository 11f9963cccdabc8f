"""Quality flags of a segmented cell that need a realistic cell to test: thin cells."""

import numpy as np

from sxtseg import Volume, make_infected_cell
from sxtseg.quality import THIN_CELL_UM, cell_thickness_um, segmentation_flags


def _flags(classes: Volume) -> list[str]:
    return [f["flag"] for f in segmentation_flags(classes)]


def test_thin_cells_are_flagged_and_thick_or_cut_ones_are_not():
    # the phantom fits the whole cell into the field: 32 slices of 30 nm draw a cell under 1 um thick,
    # the kind whose nucleus the default model misses; 96 slices draw one of about 2.4 um
    _, thin, _, _ = make_infected_cell((32, 96, 96), voxel_size_nm=30.0, seed=3)
    _, thick, _, _ = make_infected_cell((96, 96, 96), voxel_size_nm=30.0, seed=3)
    thin_um, thick_um = cell_thickness_um(thin), cell_thickness_um(thick)
    assert 0.5 < thin_um < 0.96 and thick_um > 2.0, (thin_um, thick_um)  # 0.96 um: the 32-slice field
    assert "thin_cell" in _flags(thin) and "thin_cell" not in _flags(thick)
    message = next(f["message"] for f in segmentation_flags(thin) if f["flag"] == "thin_cell")
    assert f"{thin_um:.2f} um thick" in message and f"{THIN_CELL_UM:g} um" in message
    # a thin crop out of the thick cell is cut by the field in z: its thickness is the field's, not the cell's
    middle = thick.with_data(thick.to_numpy()[32:64])
    assert cell_thickness_um(middle) is None and "thin_cell" not in _flags(middle)


def test_cell_thickness_counts_cell_voxels_per_column_in_physical_units():
    classes = np.zeros((40, 20, 20), np.uint8)
    classes[10:30, 2:18, 2:18] = 1             # 20 slices of 100 nm: 2 um
    classes[37:40, 0:2, 0:2] = 8               # a gold bead in the ice on the last slice is not cell
    classes[0, 0, 0] = 1                       # a speck of false cell on the first slice does not cut it
    assert cell_thickness_um(Volume(classes, voxel_size=(100.0, 30.0, 30.0), unit="nm")) == 2.0
    assert cell_thickness_um(Volume(classes, voxel_size=(0.05, 0.03, 0.03), unit="um")) == 1.0
    assert cell_thickness_um(Volume(classes)) is None          # no voxel size: cannot be told
    assert cell_thickness_um(Volume(classes[20], voxel_size=30.0, axes="yx")) is None  # a slice: no thickness
    cut = classes.copy()
    cut[:12, 2:18, 2:18] = 1                   # the cell runs out of the first slice
    assert cell_thickness_um(Volume(cut, voxel_size=30.0)) is None
    assert cell_thickness_um(Volume(np.zeros((4, 4, 4), np.uint8), voxel_size=30.0)) is None


def test_a_missing_wedge_is_found_about_either_axis_and_flagged():
    from sxtseg.phantom import ImagingModel
    from sxtseg.quality import missing_wedge_flags
    from sxtseg.wedge import WEDGE_POWER_RATIO, missing_wedge

    plain, _, _, _ = make_infected_cell((48, 128, 128), voxel_size_nm=30.0, seed=4)
    wedged, _, _, _ = make_infected_cell((48, 128, 128), voxel_size_nm=30.0, seed=4,
                                         imaging=ImagingModel(tilt_range_deg=(-85, 85)))
    whole = missing_wedge(plain)
    assert not whole["detected"] and whole["kz_axis_power_ratio"] > 2 * WEDGE_POWER_RATIO, whole
    found = missing_wedge(wedged)
    assert found["detected"] and found["tilt_axis"] == "y" and found["ratios"]["x"] > WEDGE_POWER_RATIO, found
    swapped = missing_wedge(Volume(np.swapaxes(wedged.to_numpy(), 1, 2).copy(), voxel_size=30.0))
    assert swapped["detected"] and swapped["tilt_axis"] == "x"
    # in any grey-value convention: the test is on the spectrum's shape, not its scale or offset
    grey = Volume((wedged.to_numpy() * 40000 + 2000).round().astype(np.uint16), voxel_size=30.0)
    assert missing_wedge(grey)["tilt_axis"] == "y"
    (flag,) = missing_wedge_flags(wedged, name="cell.mrc")
    assert flag["flag"] == "missing_wedge" and flag["message"].startswith("cell.mrc: a missing wedge (tilt axis y")
    assert missing_wedge_flags(plain) == []
    assert missing_wedge(Volume(np.zeros((8, 64, 64), np.float32), voxel_size=30.0))["ratios"] is None  # too thin

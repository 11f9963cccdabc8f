"""Compartments from a second model (sxtseg.compartments) and segment()'s use of it."""

import numpy as np
import pytest
from conftest import make_tiny_model

from sxtseg import SXTClass, Volume, make_infected_cell, segment
from sxtseg.calibration import CalibrationRecord
from sxtseg.compartments import combine, compartment_model_for

COARSEST_NM = [40.0] * 3  # the default model trained at 25-40 nm
WITH_ICE = CalibrationRecord("two-point", "lac", references=[{"name": "ice"}, {"name": "cytoplasm"}])


def test_grown_dmvs_are_the_main_models_with_the_second_models_boundaries():
    c = SXTClass
    main = np.full((7, 11, 11), c.CYTOPLASM, np.uint8)
    second = main.copy()
    main[2:5, 4:7, 4:7] = c.DMV                   # the main model's DMV, 3 voxels across (interior: 1 voxel)
    second[1:6, 3:8, 3:8] = c.DMV                 # the second model's around it, 5 across
    second[0:7, 0:3, 0:2] = c.DMV                 # and one of its own, apart
    main[1, 3, 3] = c.MITOCHONDRION               # an organelle of the main model is not overwritten
    main[3, 9, 9] = c.DMV                         # a speck of the main model's ...
    second[2:5, 8:11, 8:11] = c.DMV               # ... inside a DMV of the second's: not grown into an object
    out = combine(main, second, grow_dmvs=True)
    assert out[1, 3, 3] == c.MITOCHONDRION and (out[:, 0:3, 0:2] == c.CYTOPLASM).all()
    assert (out[1:6, 3:8, 3:8] == c.DMV).sum() == 124
    assert (out[2:5, 8:11, 8:11] == c.DMV).sum() == 1
    # block by block with the documented overlap: the same as whole
    import dask.array as da

    from sxtseg.compartments import DMV_GROWTH_DEPTH

    blocks = da.map_overlap(combine, da.from_array(main, chunks=(4, 5, 5)), da.from_array(second, chunks=(4, 5, 5)),
                            depth=DMV_GROWTH_DEPTH, boundary="none", dtype=np.uint8, grow_dmvs=True)
    np.testing.assert_array_equal(blocks.compute(), out)


def test_combine_takes_a_compartment_only_where_both_models_see_one():
    c = SXTClass
    organelles = np.array([c.CYTOPLASM, c.CYTOPLASM, c.DMV, c.NUCLEUS, c.BACKGROUND, c.MITOCHONDRION], np.uint8)
    compartments = np.array([c.NUCLEUS, c.NUCLEOLUS, c.CYTOPLASM, c.CYTOPLASM, c.DMV, c.NUCLEUS], np.uint8)
    out = combine(organelles, compartments)
    assert out.dtype == np.uint8
    # the second model's compartments replace the first's; organelles of either model are never swapped in or out
    assert out.tolist() == [c.NUCLEUS, c.NUCLEOLUS, c.DMV, c.CYTOPLASM, c.BACKGROUND, c.MITOCHONDRION]


@pytest.mark.parametrize(("voxel_nm", "expected"), [
    ([50.0, 50.0, 50.0], "plain"),
    ([60.0, 30.0, 30.0], "plain"),  # z alone coarse
    ([44.0, 44.0, 44.0], None),     # within the 10 % tolerance of 40 nm
    ([20.0, 20.0, 20.0], None),     # finer is resampled, not coarse
])
def test_the_rule_follows_the_default_models_training_voxels(voxel_nm, expected):
    model, reason = compartment_model_for("default", "auto", voxel_nm, COARSEST_NM, WITH_ICE)
    assert model == expected, reason


def test_a_thin_cell_takes_the_plain_models_compartments_at_any_voxel_size():
    model, reason = compartment_model_for("default", "auto", [30.0] * 3, COARSEST_NM, WITH_ICE, thickness_um=1.1)
    assert model == "plain" and "thin cell (1.10 µm" in reason
    assert compartment_model_for("default", "auto", [30.0] * 3, COARSEST_NM, WITH_ICE, thickness_um=1.6)[0] is None
    # a cell cut by the field of view has no thickness to tell (None): not thin
    assert compartment_model_for("default", "auto", [30.0] * 3, COARSEST_NM, WITH_ICE, thickness_um=None)[0] is None


def test_the_rule_stands_aside_without_ice_for_other_models_and_on_request():
    no_ice = CalibrationRecord("identity", "lac", flags=["no_ice_reference"])
    model, reason = compartment_model_for("default", "auto", [50.0] * 3, COARSEST_NM, no_ice)
    assert model is None and "no ice" in reason
    assert compartment_model_for("my.pt", "auto", [50.0] * 3, COARSEST_NM, WITH_ICE)[0] is None
    assert compartment_model_for("default", None, [50.0] * 3, COARSEST_NM, WITH_ICE)[0] is None
    assert compartment_model_for("default", "none", [50.0] * 3, COARSEST_NM, WITH_ICE)[0] is None
    # asked for by name: always, whatever the voxels
    assert compartment_model_for("my.pt", "plain", [30.0] * 3, COARSEST_NM, WITH_ICE)[0] == "plain"
    from sxtseg import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="compartment_model must be"):
        compartment_model_for("default", object(), [30.0] * 3, COARSEST_NM, WITH_ICE)


def test_the_rule_stands_aside_for_a_missing_wedge():
    from sxtseg.phantom import ImagingModel

    kwargs = {"voxel_size_nm": 50.0, "seed": 4}
    plain, _, _, _ = make_infected_cell((32, 96, 96), **kwargs)
    wedged, _, _, _ = make_infected_cell((32, 96, 96), **kwargs,
                                         imaging=ImagingModel(psf_sigma_xy_nm=50.0, psf_sigma_z_nm=75.0,
                                                              tilt_range_deg=(-60, 60)))
    assert compartment_model_for("default", "auto", [50.0] * 3, COARSEST_NM, WITH_ICE, plain)[0] == "plain"
    model, reason = compartment_model_for("default", "auto", [50.0] * 3, COARSEST_NM, WITH_ICE, wedged)
    assert model is None and "missing wedge" in reason


def test_segment_combines_the_two_models_block_by_block_and_on_resume(tmp_path):
    main = make_tiny_model(tmp_path / "main.pt", seed=0)
    second = make_tiny_model(tmp_path / "second.pt", seed=5)
    image, _, _, _ = make_infected_cell((32, 64, 64), seed=21, n_dmv=3)
    options = {"progress": False, "mirror": False, "block_shape": (32, 32, 32), "halo": (4, 8, 8)}
    alone = segment(image, main, compartment_model=None, **options)
    other = segment(image, second, compartment_model=None, **options)
    assert alone.metadata["segmentation"]["compartments"]["model"] is None
    wanted = combine(alone.to_numpy(), other.to_numpy())
    assert (wanted != alone.to_numpy()).any()  # the two untrained models differ: the test can tell them apart
    both = segment(image, main, compartment_model=second, output=tmp_path / "seg.zarr", **options)
    np.testing.assert_array_equal(both.to_numpy(), wanted)
    record = both.metadata["segmentation"]["compartments"]
    assert record["model"] == str(second) and record["model_sha256"] == other.metadata["segmentation"]["model_sha256"]
    assert (tmp_path / "seg.zarr" / "compartments" / "segment.json").exists()
    again = segment(image, main, compartment_model=second, output=tmp_path / "seg.zarr", **options)  # resumed: done
    np.testing.assert_array_equal(again.to_numpy(), wanted)


def test_a_coarse_volume_gets_the_plain_models_compartments_by_default():
    image, _, _, _ = make_infected_cell((32, 64, 64), voxel_size_nm=50.0, seed=8)
    volume = Volume(np.ascontiguousarray(image.to_numpy()), voxel_size=50.0)
    options = {"progress": False, "mirror": False}
    result = segment(volume, **options)
    record = result.metadata["segmentation"]["compartments"]
    assert record["model"] == "plain" and "coarser on z, y, x" in record["reason"] and record["dmvs_grown"]
    default_alone = segment(volume, compartment_model=None, **options).to_numpy()
    plain_alone = segment(volume, "plain", compartment_model=None, **options).to_numpy()
    np.testing.assert_array_equal(result.to_numpy(), combine(default_alone, plain_alone, grow_dmvs=True))
    from sxtseg.quality import voxel_size_flags

    (flag,) = voxel_size_flags(result.metadata["segmentation"], name="cell.mrc")
    assert "came from the plain model" in flag["message"]


def test_segment_measures_the_cell_to_find_a_thin_one():
    from sxtseg.quality import cell_thickness_um

    image, truth, _, _ = make_infected_cell((32, 96, 96), voxel_size_nm=30.0, seed=7)
    assert cell_thickness_um(truth) < 1.0
    result = segment(image, progress=False, mirror=False)
    record = result.metadata["segmentation"]["compartments"]
    assert record["model"] == "plain" and "thin cell" in record["reason"], record
    from sxtseg.quality import segmentation_flags

    thin = [f for f in segmentation_flags(result) if f["flag"] == "thin_cell"]
    assert thin and "came from the plain model" in thin[0]["message"]

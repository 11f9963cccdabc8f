"""CT adapter: reading DICOM/NIfTI, lung masks and lesion quantification, on real scans and built series."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

import pydicom  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid  # noqa: E402

from conftest import shared_data  # noqa: E402
from sxtseg import open_volume  # noqa: E402
from sxtseg.adapters.ct import (NoLungsError, analyse_ct, ct_severity_score, lesion_quantification,  # noqa: E402
                                lung_mask, open_ct)
from sxtseg.adapters.ct._geometry import to_spl  # noqa: E402
from sxtseg.adapters.ct._nifti import read_nifti  # noqa: E402
from sxtseg.adapters.ct.lesions import severity_band  # noqa: E402
from sxtseg.cli import main  # noqa: E402
from sxtseg.errors import (AmbiguousDatasetError, CorruptFileError, InvalidArgumentError,  # noqa: E402
                           UnsupportedFormatError)
from sxtseg.phantom.chest import make_chest_phantom  # noqa: E402

A0002 = ("ct-lung-pet-ct-dx-A0002",)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


# ---------------------------------------------------------------- DICOM series built with pydicom

def ct_slice(path: Path, z_mm: float, *, series_uid: str, pixels: np.ndarray, instance: int = 1,
             description: str = "built series", slope: float = 1.0, intercept: float = -1024.0,
             transfer_syntax=ExplicitVRLittleEndian, pixel_data: bool = True, modality: str = "CT") -> Path:
    """Write one CT slice: stored values ``pixels`` (uint16), position (0, 0, z_mm), axial."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.SeriesInstanceUID = modality, "BUILT-1", series_uid
    ds.StudyInstanceUID, ds.SeriesDescription, ds.InstanceNumber = "1.2.3", description, instance
    ds.ImagePositionPatient = [0.0, 0.0, float(z_mm)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.8, 0.7], 5.0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if pixel_data:
        ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def build_series(folder: Path, positions, *, series_uid=None, names=None, **kwargs) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    uid = series_uid or generate_uid()
    paths = []
    for i, z in enumerate(positions):
        pixels = np.full((6, 8), 24 + 10 * i, np.uint16)  # slice i holds -1000 + 10 i HU (air)
        name = names[i] if names else f"slice{i:03d}.dcm"
        paths.append(ct_slice(folder / name, z, series_uid=uid, pixels=pixels, instance=len(positions) - i, **kwargs))
    return paths


def test_slices_ordered_by_position_not_name_or_instance(tmp_path):
    # file names shuffled, InstanceNumber counting down: only the positions give the order
    names = ["c.dcm", "a.dcm", "e.dcm", "b.dcm", "d.dcm"]
    build_series(tmp_path / "s", [20.0, 0.0, 10.0, 5.0, 15.0], names=names, slope=2.0, intercept=-2000.0)
    vol = open_ct(tmp_path / "s")
    hu = vol.to_numpy()
    # slice i holds 2 * (24 + 10 i) - 2000 HU; ascending positions 0, 5, 10, 15, 20 are slices 1, 3, 2, 4, 0
    assert hu[:, 0, 0].tolist() == [-1932.0, -1892.0, -1912.0, -1872.0, -1952.0]
    assert vol.voxel_size == (5.0, 0.8, 0.7) and vol.unit == "mm"
    assert vol.metadata["ct"]["files"] == ["a.dcm", "b.dcm", "e.dcm", "d.dcm", "c.dcm"]
    assert vol.metadata["ct"]["slice_thickness_mm"] == 5.0


def test_uneven_spacing_and_missing_slice_are_warned(tmp_path):
    build_series(tmp_path / "s", [0.0, 2.0, 4.0, 8.0, 10.0])  # 6 mm is missing
    with pytest.warns(UserWarning, match=r"missing slices.*slice002.dcm -> slice003.dcm: 4 mm"):
        vol = open_ct(tmp_path / "s")
    assert vol.voxel_size[0] == 2.0
    assert vol.metadata["ct"]["uneven_spacing"] == [{"between": ["slice002.dcm", "slice003.dcm"], "step_mm": 4.0}]
    build_series(tmp_path / "u", [0.0, 2.0, 4.5, 6.0, 8.0])
    with pytest.warns(UserWarning, match="uneven slice spacing"):
        open_ct(tmp_path / "u")


def test_duplicate_positions_are_warned_and_left_out(tmp_path):
    build_series(tmp_path / "s", [0.0, 3.0, 3.0, 6.0])
    with pytest.warns(UserWarning, match=r"share a position.*slice002.dcm duplicates slice001.dcm"):
        vol = open_ct(tmp_path / "s")
    assert vol.shape[0] == 3 and vol.voxel_size[0] == 3.0
    assert vol.metadata["ct"]["duplicate_positions"] == [["slice001.dcm", "slice002.dcm"]]


def test_two_series_in_one_folder(tmp_path):
    build_series(tmp_path / "s", [0.0, 1.0, 2.0], series_uid="1.2.3.4", description="soft kernel",
                 names=["a1.dcm", "a2.dcm", "a3.dcm"])
    build_series(tmp_path / "s", [0.0, 1.0], series_uid="1.2.3.5", description="lung kernel",
                 names=["b1.dcm", "b2.dcm"])
    with pytest.raises(AmbiguousDatasetError, match=r"(?s)2 series.*1\.2\.3\.4: soft kernel, CT, 3 file.*"
                                                    r"1\.2\.3\.5: lung kernel, CT, 2 file"):
        open_ct(tmp_path / "s")
    assert open_ct(tmp_path / "s", series_uid="1.2.3.5").shape[0] == 2
    with pytest.raises(AmbiguousDatasetError, match="no series '9.9'"):
        open_ct(tmp_path / "s", series_uid="9.9")


def test_coronal_series_reordered_to_superior_posterior_left(tmp_path):
    # coronal slices: along a row towards the patient's left, down a column towards the feet, slices to the back
    uid = generate_uid()
    for k, y_mm in enumerate((0.0, 3.0, 6.0)):
        pixels = (24 + 10 * np.arange(4)[:, None] + k + np.zeros((1, 5))).astype(np.uint16)  # row r: -1000 + 10 r + k
        path = ct_slice(tmp_path / f"c{k}.dcm", 0.0, series_uid=uid, pixels=pixels)
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        ds.ImagePositionPatient = [0.0, y_mm, 0.0]
        ds.save_as(path)
    vol = open_ct(tmp_path)
    assert vol.shape == (4, 3, 5) and vol.voxel_size == (0.8, 3.0, 0.7)
    hu = vol.to_numpy()
    assert hu[:, 0, 0].tolist() == [-970.0, -980.0, -990.0, -1000.0]  # the bottom row is the lowest z
    assert hu[0, :, 0].tolist() == [-970.0, -969.0, -968.0]  # slices in order towards the back
    assert np.allclose(np.array(vol.metadata["ct"]["affine_lps"])[:3, :3], [[0, 0, 0.7], [0, 3.0, 0], [0.8, 0, 0]])


def test_multiframe_ct(tmp_path):
    from pydicom.sequence import Sequence

    path = ct_slice(tmp_path / "mf.dcm", 0.0, series_uid=generate_uid(), pixels=np.zeros((4, 5), np.uint16))
    ds = pydicom.dcmread(path)
    frames = np.stack([np.full((4, 5), 100 * (i + 1), np.uint16) for i in range(3)])
    ds.NumberOfFrames = 3
    ds.PixelData = frames.tobytes()
    shared = Dataset()
    measures, orientation = Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.5, 0.5], 2.0
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = Sequence([measures]), Sequence([orientation])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for z in (4.0, 0.0, 2.0):  # frames stored out of order
        item, position, rescale = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [0.0, 0.0, z]
        rescale.RescaleSlope, rescale.RescaleIntercept = 1.0, -1000.0
        item.PlanePositionSequence, item.PixelValueTransformationSequence = Sequence([position]), Sequence([rescale])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.save_as(path)
    vol = open_ct(path)
    assert vol.shape == (3, 4, 5) and vol.voxel_size == (2.0, 0.5, 0.5)
    # ascending z: frame 2 (0 mm, 200), frame 3 (2 mm, 300), frame 1 (4 mm, 100)
    assert vol.to_numpy()[:, 0, 0].tolist() == [-800.0, -700.0, -900.0]


def test_bad_dicom_inputs_name_the_file(tmp_path):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a dicom file at all" * 20)
    with pytest.raises(UnsupportedFormatError, match=r"junk\.dcm: not a DICOM file"):
        open_ct(junk)
    header = ct_slice(tmp_path / "header.dcm", 0.0, series_uid="1.2", pixels=np.zeros((4, 4), np.uint16),
                      pixel_data=False)
    with pytest.raises(CorruptFileError, match=r"header\.dcm: has no pixel data"):
        open_ct(header)
    # JPEG 2000 Part 2 multi-component: no pydicom decoder exists for it
    from pydicom.encaps import encapsulate

    odd = ct_slice(tmp_path / "p2.dcm", 0.0, series_uid="1.3", pixels=np.zeros((4, 4), np.uint16),
                   transfer_syntax=pydicom.uid.JPEG2000MCLossless, pixel_data=False)
    ds = pydicom.dcmread(odd)
    ds.PixelData = encapsulate([b"\x00" * 16])
    ds["PixelData"].VR = "OB"
    ds.save_as(odd)
    with pytest.raises(UnsupportedFormatError, match=r"p2\.dcm: pixel data compressed as JPEG 2000 Part 2.*gdcmconv"):
        open_ct(odd)
    with pytest.raises(UnsupportedFormatError, match=r"Modality 'MR'"):
        open_ct(ct_slice(tmp_path / "mr.dcm", 0.0, series_uid="1.4", pixels=np.zeros((4, 4), np.uint16),
                         modality="MR"))


def test_missing_decoder_names_the_package(tmp_path):
    """A JPEG 2000 series read where no JPEG 2000 decoder is installed: the error says what to pip install."""
    folder = shared_data("totalseg-ct", "example_ct_dicom")
    script = (
        "import sys\n"
        "for name in ('openjpeg', 'pylibjpeg', 'libjpeg', 'gdcm', 'PIL'): sys.modules[name] = None\n"
        "from sxtseg.adapters.ct import open_ct\n"
        "from sxtseg.errors import UnsupportedFormatError\n"
        f"try:\n    open_ct({str(folder)!r})\nexcept UnsupportedFormatError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "no decoder for it is installed" in out and "pip install pylibjpeg pylibjpeg-openjpeg" in out
    assert "example_ct_dicom" in out


def test_cxr_refused_by_open_ct():
    cxr = shared_data("cxr-torchxrayvision-tests", "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm")
    with pytest.raises(UnsupportedFormatError, match=r"850819\.dcm: is a CR image.*open_cxr"):
        open_ct(cxr)


# ---------------------------------------------------------------- real scans

@pytest.fixture(scope="module")
def a0002():
    """Both reconstructions of the shared chest CT, opened and their lungs segmented once."""
    root = shared_data(*A0002)
    scans = {kernel: open_ct(root / f"A0002_thorax_{kernel}_series{n}").compute()
             for kernel, n in (("B40f", 3), ("B70f", 2))}
    return {kernel: (scan, lung_mask(scan)) for kernel, scan in scans.items()}


def test_real_ct_hounsfield_units_and_geometry(a0002):
    scan, _ = a0002["B40f"]
    assert scan.shape == (30, 512, 512)
    assert scan.voxel_size == pytest.approx((8.0, 0.646484375, 0.646484375))
    ct = scan.metadata["ct"]
    assert (ct["convolution_kernel"], ct["manufacturer"], ct["kvp"]) == ("B40f", "SIEMENS", 120.0)
    assert ct["patient_id"] == "Lung_Dx-A0002" and ct["series_instance_uid"]
    assert ct["affine_lps"][2][0] == 8.0  # z index grows towards the head
    hu = scan.to_numpy()
    counts, edges = np.histogram(hu, bins=np.arange(-1100, 310, 10))
    centres = edges[:-1] + 5

    def peak(low, high):
        inside = (centres >= low) & (centres < high)
        return centres[inside][np.argmax(counts[inside])]

    assert -1030 <= peak(-1100, -900) <= -970  # air
    assert 0 <= peak(-30, 150) <= 100  # soft tissue
    assert -150 <= peak(-200, -30) <= -50  # fat, negative
    assert counts[(centres > -150) & (centres < -50)].sum() > 0.02 * hu.size


def test_lung_volume_agrees_across_kernels_and_sides(a0002):
    volumes = {}
    for kernel, (scan, lungs) in a0002.items():
        labels = lungs.to_numpy()
        right, left = labels == 1, labels == 2
        assert right.sum() > 0 and left.sum() > 0
        # the left lung lies towards the patient's left: larger x
        assert np.argwhere(left)[:, 2].mean() > np.argwhere(right)[:, 2].mean() + 100
        volumes[kernel] = lungs.metadata["lungs"]["volume_ml"]
        assert 900 < volumes[kernel]["right_lung"] < 2500 and 900 < volumes[kernel]["left_lung"] < 2500
    total = {k: sum(v.values()) for k, v in volumes.items()}
    assert abs(total["B40f"] - total["B70f"]) / total["B40f"] < 0.03
    for side in ("right_lung", "left_lung"):
        assert abs(volumes["B40f"][side] - volumes["B70f"][side]) / volumes["B40f"][side] < 0.03
    # the mask is lung: parenchyma HU inside, the trachea not in it
    scan, lungs = a0002["B40f"]
    assert -900 < np.median(scan.to_numpy()[lungs.to_numpy() > 0]) < -700
    assert lungs.metadata["lungs"]["airway_voxels"] > 0


def test_jpeg2000_series_thickness_differs_from_spacing():
    scan = open_ct(shared_data("totalseg-ct", "example_ct_dicom"))
    assert scan.shape == (20, 512, 512)
    assert scan.voxel_size[0] == pytest.approx(2.0)  # from the positions
    assert scan.metadata["ct"]["slice_thickness_mm"] == 3.0
    assert scan.metadata["ct"]["transfer_syntax"].startswith("JPEG 2000")
    hu = scan.to_numpy()
    assert hu.min() == -1024.0 and 20 < np.median(hu[hu > -200]) < 120
    # the same scan through open_volume's dispatch
    assert open_volume(shared_data("totalseg-ct", "example_ct_dicom")).unit == "mm"


def test_abdomen_ct_holds_no_lungs():
    scan = open_ct(shared_data("totalseg-ct", "example_ct.nii.gz"))
    with pytest.raises(NoLungsError, match=r"example_ct\.nii\.gz: holds no lungs"):
        lung_mask(scan)


def test_lung_mask_agrees_with_totalsegmentator_lobes():
    """Lung bases of the TotalSegmentator sub-volume: Dice against its reference lobes (0.958 measured)."""
    folder = shared_data("totalseg-ct")
    scan = open_ct(folder / "example_ct_sm.nii.gz")
    seg, affine, _ = read_nifti(folder / "example_seg.nii.gz")
    seg = np.asarray(to_spl(seg, affine, "seg")[0])
    labels = lung_mask(scan, min_lung_fraction=0.001).to_numpy()  # the lung bases only: a small fraction
    assert dice(labels > 0, np.isin(seg, [10, 11, 12, 13, 14])) > 0.93
    assert dice(labels == 1, np.isin(seg, [12, 13, 14])) > 0.92  # right: upper, middle, lower lobes
    assert dice(labels == 2, np.isin(seg, [10, 11])) > 0.90  # left: upper, lower lobes


def test_contrast_chest_crop_lungs_cut_by_the_field_of_view():
    scan = open_ct(shared_data("totalseg-ct", "pulmonary_report", "models", "ct_cropped.nii.gz"))
    assert scan.metadata["ct"]["nifti_axcodes"] == "LPS"
    lungs = lung_mask(scan)
    labels = lungs.to_numpy()
    assert np.argwhere(labels == 2)[:, 2].mean() > np.argwhere(labels == 1)[:, 2].mean()
    volumes = lungs.metadata["lungs"]["volume_ml"]
    assert 400 < volumes["right_lung"] < 900 and 400 < volumes["left_lung"] < 900


def test_lungmask_slices_with_padding_and_no_modality():
    folder = shared_data("lungmask-testdata")
    with pytest.warns(UserWarning, match="no Modality tag"):
        scan = open_ct(folder)
    assert scan.shape == (2, 512, 512) and scan.to_numpy().min() == -2048.0
    labels = lung_mask(scan).to_numpy()
    assert (labels == 1).sum() > 10000 and (labels == 2).sum() > 10000
    assert not labels[:, :20].any()  # nothing from the -2048 padding outside the field of view


# ---------------------------------------------------------------- chest phantom: exact truth

@pytest.mark.parametrize("seed, touching", [(0, False), (1, True), (5, False)])
def test_phantom_lung_mask_and_lesion_volumes(seed, touching):
    ct, truth = make_chest_phantom(seed=seed, touching=touching)
    lungs = lung_mask(ct)
    labels = lungs.to_numpy()
    for code in (1, 2):
        assert dice(labels == code, truth["lungs"] == code) >= 0.97
    if touching:
        assert lungs.metadata["lungs"]["separation"] == "split by erosion"
    lesions, table = lesion_quantification(ct, lungs)
    found = lesions.to_numpy()
    voxel_ml = np.prod(ct.voxel_size) / 1000.0
    assert (found == 1).sum() * voxel_ml == pytest.approx(truth["ggo_ml"], rel=0.05)
    assert (found == 2).sum() * voxel_ml == pytest.approx(truth["consolidation_ml"], rel=0.05)  # vessels left out
    zones = table[table["zone"] != "all"]
    for side in ("right_lung", "left_lung"):
        assert zones[zones["lung"] == side]["lung_volume_ml"].sum() == pytest.approx(
            float(table[(table["lung"] == side) & (table["zone"] == "all")]["lung_volume_ml"].iloc[0]))


def test_severity_bands_and_score():
    assert [severity_band(p) for p in (0, 0.1, 4.9, 5, 25, 25.1, 49.9, 50, 75, 75.1, 100)] == \
           [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    ct, truth = make_chest_phantom(seed=0)
    _, table = lesion_quantification(ct, lung_mask(ct))
    score = ct_severity_score(table)
    assert len(score["zone_scores"]) == 6 and score["max_score"] == 30
    expected = 100 * (truth["ggo_ml"] + truth["consolidation_ml"]) / sum(truth["lungs_ml"].values())
    assert score["involvement_percent"] == pytest.approx(expected, rel=0.06)
    assert score["total_score"] == sum(score["zone_scores"].values()) > 0


def test_ct_command_writes_results_and_refuses_bad_outputs(tmp_path, capsys):
    ct, _ = make_chest_phantom(shape=(32, 128, 160), seed=2)
    affine = np.diag([2.0, 2.0, 5.0, 1.0])  # RAS: i runs to the patient's right, j to the front
    data = np.transpose(ct.to_numpy(), (2, 1, 0))[::-1, ::-1, :].astype(np.int16)
    nifti = tmp_path / "chest.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data), affine), nifti)
    assert np.array_equal(open_ct(nifti).to_numpy(), ct.to_numpy())  # the flips are undone
    out = tmp_path / "results"
    assert main(["ct", str(nifti), "-o", str(out)]) == 0
    assert "zone severity score" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["ct.ome.zarr", "quicklook.png", "report.json", "zones.csv"]
    report = json.loads((out / "report.json").read_text())
    assert report["voxel_size_mm"] == [5.0, 2.0, 2.0] and report["severity"]["max_score"] == 30
    labels = open_volume(out / "ct.ome.zarr" / "labels" / "lungs")
    assert labels.unit == "mm" and set(np.unique(labels.to_numpy())) == {0, 1, 2}
    assert main(["ct", str(nifti), "-o", str(out)]) == 2  # exists
    assert "already exists" in capsys.readouterr().err
    assert main(["ct", str(nifti), "-o", str(out), "--overwrite"]) == 0
    assert main(["ct", str(nifti), "-o", str(nifti)]) == 2  # over the input
    assert "would overwrite the input" in capsys.readouterr().err
    assert nifti.exists()
    empty = tmp_path / "abdomen.nii.gz"
    nib.save(nib.Nifti1Image(np.full((40, 40, 10), 40, np.int16), np.eye(4)), empty)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["ct", str(empty), "-o", str(tmp_path / "none")]) == 2
    assert "holds no lungs" in capsys.readouterr().err and not (tmp_path / "none").exists()
    assert not [p for p in tmp_path.iterdir() if "sxtseg-tmp" in p.name]  # nothing half-written left


def test_analyse_ct_report_from_volume(tmp_path):
    ct, truth = make_chest_phantom(shape=(32, 128, 160), seed=3)
    report = analyse_ct(ct, tmp_path / "r")
    assert report["lung_volume_ml"] == pytest.approx(sum(truth["lungs_ml"].values()), rel=0.03)
    assert report["ggo_volume_ml"] == pytest.approx(truth["ggo_ml"], rel=0.05)
    assert set(report["per_lung"]) == {"right_lung", "left_lung", "both"}


def test_lung_mask_with_a_trained_model(tmp_path):
    """A lung model trained with sxtseg.train.fit on a phantom: its classes are mapped to right 1, left 2."""
    from sxtseg import Volume, segment
    from sxtseg.models import load_model
    from sxtseg.train import TrainingConfig, fit

    ct, truth = make_chest_phantom(shape=(16, 96, 128), seed=4)
    classes = {"background": 0, "left_lung": 1, "right_lung": 2}  # not lung_mask's order
    labels = np.select([truth["lungs"] == 2, truth["lungs"] == 1], [1, 2], 0).astype(np.uint8)
    config = TrainingConfig(model="unet", spatial_dims=2, patch_size=(64, 64), classes=classes,
                            model_config={"channels": (4, 8), "strides": (2,), "num_res_units": 0},
                            intensity={"method": "fixed", "low": -1000.0, "high": 400.0}, calibration="none",
                            epochs=1, steps_per_epoch=3, batch_size=2, augment=False)
    result = fit([(ct, ct.with_data(labels))], tmp_path / "run", config=config, progress=False)
    model = load_model(result["best_checkpoint"])
    lungs = lung_mask(ct, model=model, min_lung_fraction=0.0)
    predicted = segment(ct, model=model, calibration="none", progress=False).to_numpy()
    expected = np.select([predicted == 2, predicted == 1], [1, 2], 0)
    assert np.array_equal(lungs.to_numpy(), expected)
    assert lungs.metadata["lungs"]["separation"] == "model"
    wrong = load_model(result["best_checkpoint"])
    wrong.metadata = {**wrong.metadata, "classes": {"background": 0, "a": 1, "b": 2}}
    with pytest.raises(InvalidArgumentError, match="needs classes right_lung and left_lung, or lung"):
        lung_mask(Volume(ct.data, voxel_size=ct.voxel_size, unit="mm"), model=wrong)

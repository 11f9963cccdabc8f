"""Accuracy of the classical CT lung mask and lesion quantification on the shared real scans and chest phantoms.

Measures, and prints as one JSON record:

- the two reconstructions (B40f soft, B70f sharp) of TCIA Lung-PET-CT-Dx
  A0002: lung volume per side and their agreement, and the lesion
  involvement each gives (the patient has lung cancer, not COVID-19: every
  GGO found there is a false positive or non-COVID disease);
- TotalSegmentator's test sub-volume (``example_ct_sm``): Dice of the lung
  mask against TotalSegmentator's reference lobes (a model's output, not
  manual truth), both lungs and per side;
- the contrast chest crop (lungs cut by the field of view): lung volumes, involvement;
- the abdomen CT: whether "no lungs" is reported;
- chest phantoms of held-out seeds (never looked at while tuning: 10-14):
  lung Dice per side and the relative error of the GGO and consolidation volumes.

No peer runs here: lungmask and TotalSegmentator need model weights from the
internet, which this machine cannot fetch; TotalSegmentator enters only
through the reference segmentation shipped with its tests.

Usage: ``python benchmarks/bench_ct_lungs.py [--data ../shared/data] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from sxtseg.adapters.ct import NoLungsError, ct_severity_score, lesion_quantification, lung_mask, open_ct
from sxtseg.adapters.ct._geometry import to_spl
from sxtseg.adapters.ct._nifti import read_nifti
from sxtseg.phantom.chest import make_chest_phantom


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return round(2.0 * float((a & b).sum()) / float(a.sum() + b.sum()), 4)


def analyse(scan):
    start = time.perf_counter()
    lungs = lung_mask(scan)
    lung_s = time.perf_counter() - start
    _, table = lesion_quantification(scan, lungs)
    score = ct_severity_score(table)
    both = table[table["lung"] == "both"].iloc[0]
    return lungs, {"lung_volume_ml": {k: round(v, 1) for k, v in lungs.metadata["lungs"]["volume_ml"].items()},
                   "separation": lungs.metadata["lungs"]["separation"],
                   "ggo_percent": round(float(both["ggo_percent"]), 2),
                   "consolidation_percent": round(float(both["consolidation_percent"]), 2),
                   "zone_score": score["total_score"], "lung_mask_seconds": round(lung_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--quick", action="store_true", help="phantoms only, one seed")
    args = parser.parse_args()
    data = Path(args.data)
    warnings.simplefilter("ignore")
    record: dict = {"benchmark": "ct_lungs", "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                    "python": platform.python_version()}

    if not args.quick:
        kernels = {}
        for kernel, series in (("B40f", 3), ("B70f", 2)):
            scan = open_ct(data / "ct-lung-pet-ct-dx-A0002" / f"A0002_thorax_{kernel}_series{series}").compute()
            kernels[kernel] = analyse(scan)[1]
        total = {k: sum(v["lung_volume_ml"].values()) for k, v in kernels.items()}
        record["a0002"] = {**kernels, "lung_volume_difference_percent":
                           round(100 * abs(total["B40f"] - total["B70f"]) / total["B40f"], 3)}

        folder = data / "totalseg-ct"
        scan = open_ct(folder / "example_ct_sm.nii.gz")
        seg, affine, _ = read_nifti(folder / "example_seg.nii.gz")
        seg = np.asarray(to_spl(seg, affine, "seg")[0])
        labels = lung_mask(scan, min_lung_fraction=0.001).to_numpy()
        record["totalsegmentator_reference_dice"] = {
            "both": dice(labels > 0, np.isin(seg, [10, 11, 12, 13, 14])),
            "right": dice(labels == 1, np.isin(seg, [12, 13, 14])),
            "left": dice(labels == 2, np.isin(seg, [10, 11]))}
        record["contrast_chest_crop"] = analyse(open_ct(folder / "pulmonary_report" / "models" / "ct_cropped.nii.gz"))[1]
        try:
            lung_mask(open_ct(folder / "example_ct.nii.gz"))
            record["abdomen"] = "lungs found (wrong)"
        except NoLungsError as exc:
            record["abdomen"] = f"no lungs: {str(exc).split(': ', 1)[1]}"

    phantoms = []
    for seed in ([10] if args.quick else range(10, 15)):
        ct, truth = make_chest_phantom(seed=seed, touching=seed % 2 == 1)
        lungs, summary = analyse(ct)
        labels = lungs.to_numpy()
        lesions, _ = lesion_quantification(ct, lungs)
        found = lesions.to_numpy()
        voxel_ml = float(np.prod(ct.voxel_size)) / 1000.0
        phantoms.append({
            "seed": seed, "touching": seed % 2 == 1,
            "dice_right": dice(labels == 1, truth["lungs"] == 1), "dice_left": dice(labels == 2, truth["lungs"] == 2),
            "ggo_volume_error_percent": round(100 * ((found == 1).sum() * voxel_ml / truth["ggo_ml"] - 1), 2),
            "consolidation_volume_error_percent":
                round(100 * ((found == 2).sum() * voxel_ml / truth["consolidation_ml"] - 1), 2)})
    record["phantoms"] = phantoms
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()

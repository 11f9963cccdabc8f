"""Missing wedges of every width: what ``calibrate(method="auto")`` chooses, and the Dice that follows.

A missing wedge darkens the ice beside the cell (and brightens it above and below): with a wedge of
±78-85° that darkened ice becomes a small peak of its own in the histogram, below the true ice.
Until 2026-12-07 the calibration took the lowest large peak for ice, and so mapped the true ice onto
cytoplasm (scale x3-3.7) or found no ice at all; the model then segmented nothing right. The rule
now (:func:`sxtseg.calibration._ice_and_cytoplasm`) takes a higher peak holding more voxels than
every peak below it for ice when it makes an ice-cytoplasm pair.

For each tilt range and seed this benchmark draws the phantom (64x192x192 at 30 nm, the robustness
grid's default imaging with a wedge about y), and segments it with the shipped default model
(``segment()``, one pass per window unless ``--mirror``) twice in the same process: calibrated by
today's ``auto``, and by the rule before ("lowest large peak", computed here from the same
histogram peaks and given to ``segment`` as an explicit scale and offset). It reports both
calibrations and the nucleus and DMV Dice of each, and whether :func:`sxtseg.wedge.missing_wedge`
finds the wedge (the ``missing_wedge`` quality flag) with its power ratio.

Seeds 7503-7505 are the cells on which the failure was found and the rule chosen; 7620-7625 were
drawn after, to check it (none is a training, tuning-grid or held-out seed).

Run::

    python benchmarks/bench_wedge_calibration.py                  # tilts 90-60, seeds 7503-7505 and 7620-7625
    python benchmarks/bench_wedge_calibration.py --quick          # ±80 and no wedge, one seed (CI)

It prints one JSON record (stdout) and a markdown table (stderr).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_robustness as grid  # noqa: E402  (the robustness grid's phantom and imaging)

from sxtseg import SXTClass, Volume, calibrate, segment  # noqa: E402
from sxtseg import calibration as cal  # noqa: E402
from sxtseg.infer import dice_per_class  # noqa: E402
from sxtseg.wedge import missing_wedge  # noqa: E402


def lowest_peak_rule(volume: Volume) -> tuple[float, float] | None:
    """Scale and offset by the rule before 2026-12-07 (ice: the lowest large peak), or None (no ice found)."""
    raw, smooth = cal._sample(volume)
    values = smooth.ravel()
    low_edge, high_edge = np.percentile(values, [0.2, 99.8])
    peaks = [p for p in cal._peaks(values, low_edge, high_edge) if p["area"] >= cal._PEAK_AREA_MIN]
    if len(peaks) < 2:
        return None
    low, high = peaks[0], max(peaks[1:], key=lambda p: p["area"])
    separation = (high["value"] - low["value"]) / max(low["width"] + high["width"], 1e-12)
    if (low["value"] > 0 and high["value"] / low["value"] >= cal._ICE_RATIO_MIN) or separation >= cal._ICE_SEPARATION_SURE:
        return cal._two_point(low["value"], high["value"])
    return None


def measure(tilt: float, seed: int, mirror: bool) -> dict:
    imaging = grid._imaging(**({} if tilt >= 90 else {"tilt_range_deg": (-float(tilt), float(tilt))}))
    image, classes, _, _ = grid._phantom(seed, imaging=imaging)
    volume = Volume(image.to_numpy(), voxel_size=image.voxel_size)
    truth = classes.to_numpy()
    _, record = calibrate(volume, "auto")
    old = lowest_peak_rule(volume)
    wedge = missing_wedge(volume)
    row = {"tilt_deg": tilt, "seed": seed, "wedge_detected": wedge["detected"],
           "kz_axis_power_ratio": wedge["kz_axis_power_ratio"],
           "now": {"method": record.method, "scale": round(record.scale, 4), "offset": round(record.offset, 5)},
           "before": {"method": "two-point" if old else "identity", "scale": round(old[0], 4) if old else 1.0,
                      "offset": round(old[1], 5) if old else 0.0}}
    for name, calibration in (("now", "auto"), ("before", old if old else "none")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            classes_found = segment(volume, "default", calibration=calibration, mirror=mirror, progress=False)
        dice = dice_per_class(classes_found.to_numpy(), truth, 9)
        row[name].update(dice_nucleus=round(float(dice[SXTClass.NUCLEUS]), 4),
                         dice_dmv=round(float(dice[SXTClass.DMV]), 4))
    return row


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tilts", type=float, nargs="+", default=[90, 88, 85, 82, 80, 78, 75, 70, 60])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7503, 7504, 7505, *range(7620, 7626)])
    parser.add_argument("--mirror", action="store_true", help="average 8 mirror images (segment's default)")
    parser.add_argument("--quick", action="store_true", help="±80 and no wedge, seed 7620")
    args = parser.parse_args(argv)
    if args.quick:
        args.tilts, args.seeds = [90, 80], [7620]
    rows = []
    for tilt in args.tilts:
        for seed in args.seeds:
            rows.append(measure(tilt, seed, args.mirror))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    import torch

    record = {"benchmark": "wedge_calibration", "mirror": args.mirror, "rows": rows,
              "machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "torch": torch.__version__}}
    print(json.dumps(record))
    print("| tilt | seed | wedge found (kz-axis power ratio) | calibration before | calibration now | "
          "nucleus Dice before / now | DMV Dice before / now |\n|---|---|---|---|---|---|---|", file=sys.stderr)
    for r in rows:
        b, n = r["before"], r["now"]
        print(f"| ±{r['tilt_deg']:g} | {r['seed']} | {'yes' if r['wedge_detected'] else 'no'} "
              f"({r['kz_axis_power_ratio']:.3f}) | {b['method']} x{b['scale']:g} {b['offset']:+g} | "
              f"{n['method']} x{n['scale']:g} {n['offset']:+g} | {b['dice_nucleus']:.3f} / {n['dice_nucleus']:.3f} | "
              f"{b['dice_dmv']:.3f} / {n['dice_dmv']:.3f} |", file=sys.stderr)
    return record


if __name__ == "__main__":
    main()

"""The main job end to end, and its inference stage against plain MONAI sliding-window inference.

For each phantom size (256^3 and 512^3 here; 1024^3 too on a GPU machine) the
phantom image is written to OME-Zarr once, then, each in a fresh child
process (so that peak RSS is the case's own):

* ``sxtseg_pipeline``: ``sxtseg.run`` on the OME-Zarr file: seconds per stage
  and peak RSS;
* ``sxtseg_segment``: ``sxtseg.segment`` alone (block-wise, from and to zarr);
* ``monai_whole``: the same network and normalisation through
  ``monai.inferers.sliding_window_inference`` on the whole volume loaded in
  memory (the way scripts do it today), argmax to uint8.

Both inference cases use the same window (the model's patch), overlap 0.25,
Gaussian blending and batch size 4.  Reported: voxels per second of the
inference stage and the ratio sxtseg/MONAI of throughput and of peak RSS.

    python benchmarks/bench_pipeline.py                 # 256^3 and 512^3, about 10 min on 2 cores
    python benchmarks/bench_pipeline.py --quick         # 64^3 with a tiny model, seconds (CI)
    python benchmarks/bench_pipeline.py --sizes 1024    # on a GPU machine
    python benchmarks/bench_pipeline.py --halo-study    # block-wise vs whole-volume agreement per halo

``--halo-study`` segments a 128x384x384 phantom whole (one block) and in
64x128x128 blocks with halos of 0, 8, 16 and 32 voxels, and reports the
fraction of voxels whose class agrees with the whole-volume result: the
measurement behind ``sxtseg.infer.DEFAULT_HALO``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CHILD = textwrap.dedent("""
    import json, sys, time, threading
    import numpy as np

    case, image_path, out_dir, model = sys.argv[1:5]

    def rss(field):
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(field))

    import torch, monai, sxtseg  # imports and model load before the mark
    from sxtseg.models import load_model
    net = load_model(model)
    volume = sxtseg.open_volume(image_path)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = rss("VmRSS:")
    started = time.perf_counter()
    result = {}
    if case == "sxtseg_pipeline":
        report = sxtseg.run(volume, out_dir + "/results", net, progress=False)
        result["timings_s"] = next(iter(report["samples"].values()))["timings_s"]
        result["objects"] = next(iter(report["samples"].values()))["objects"]
    elif case == "sxtseg_segment":
        labels = sxtseg.segment(volume, net, output=out_dir + "/seg.zarr", progress=False)
        result["dmv_voxels"] = int((labels.data == 6).sum().compute())
    elif case == "monai_whole":
        from monai.inferers import sliding_window_inference
        from sxtseg.models.checkpoint import normalization_range
        meta = net.metadata
        array = volume.to_numpy().astype(np.float32)  # the whole volume in memory
        step = max(1, int(round((array.size / 4e6) ** (1 / 3))))
        low, high = normalization_range(array[::step, ::step, ::step], meta["intensity"])
        x = torch.from_numpy((array - low) / (high - low))[None, None]
        with torch.no_grad():
            logits = sliding_window_inference(x, tuple(meta["input"]["patch_size"]), 4, net.eval(), overlap=0.25,
                                              mode="gaussian", padding_mode="replicate")
        labels = logits.argmax(1)[0].numpy().astype(np.uint8)
        result["dmv_voxels"] = int((labels == 6).sum())
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_bytes"] = rss("VmHWM:") - base
    print(json.dumps(result))
""")


def run_case(case: str, image: Path, work: Path, model: str) -> dict:
    out = work / f"{case}-{image.stem}"
    out.mkdir()
    done = subprocess.run([sys.executable, "-c", CHILD, case, str(image), str(out), model],
                          capture_output=True, text=True)
    if done.returncode != 0:
        if "MemoryError" in done.stderr or done.returncode in (-9, 137):
            return {"error": "out of memory"}
        raise RuntimeError(f"{case} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def halo_study(model: str, halos=((0, 0, 0), (8, 8, 8), (16, 16, 16), (16, 32, 32), (32, 32, 32))) -> dict:
    import time


    from sxtseg import make_infected_cell, segment

    image, _, _, _ = make_infected_cell((128, 384, 384), seed=2025)
    image = image.compute()
    started = time.perf_counter()
    whole = segment(image, model, block_shape=image.shape, progress=False).to_numpy()
    rows = [{"halo": "whole volume", "seconds": time.perf_counter() - started, "agreement": 1.0}]
    for halo in halos:
        started = time.perf_counter()
        blocked = segment(image, model, block_shape=(64, 128, 128), halo=halo, progress=False).to_numpy()
        rows.append({"halo": list(halo), "seconds": time.perf_counter() - started,
                     "agreement": float((blocked == whole).mean()),
                     "dmv_agreement": float(((blocked == 6) == (whole == 6))[whole == 6].mean())})
        print(rows[-1], file=sys.stderr)
    return {"shape": [128, 384, 384], "block_shape": [64, 128, 128], "rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64^3 and a tiny untrained model, for CI")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="cube sides in voxels")
    parser.add_argument("--model", default="default", help="model name or checkpoint")
    parser.add_argument("--halo-study", action="store_true", help="only the halo agreement study")
    args = parser.parse_args(argv)
    if args.halo_study:
        print(json.dumps(halo_study(args.model)))
        return

    import sxtseg
    from sxtseg import make_infected_cell
    from sxtseg.io import save_volume

    work = Path(tempfile.mkdtemp(prefix="sxtseg-bench-pipeline-"))
    model = args.model
    sizes = args.sizes
    if args.quick:
        from sxtseg.models import build, save_checkpoint

        sizes = [64]
        model = str(work / "tiny.pt")
        save_checkpoint(build("unet", 3, 1, 7, channels=(4, 8), strides=(2,), num_res_units=0), model, {
            "classes": {str(i): i for i in range(7)}, "voxel_size_nm": [30.0] * 3,
            "intensity": {"method": "percentile", "low": 1.0, "high": 99.0},
            "input": {"patch_size": [32, 32, 32], "context_slices": 0}})
    record = {"machine": {"processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version()},
              "versions": {"sxtseg": sxtseg.__version__}, "model": model, "sizes": []}
    try:
        import monai
        import torch

        record["versions"].update(torch=torch.__version__, monai=monai.__version__)
        record["machine"]["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    for side in sizes:
        image, _, _, _ = make_infected_cell((side, side, side), seed=2024)
        path = work / f"cell{side}.ome.zarr"
        save_volume(image, path)
        del image
        entry = {"side": side, "voxels": side**3}
        for case in ("sxtseg_pipeline", "sxtseg_segment", "monai_whole"):
            entry[case] = run_case(case, path, work, model)
            print(f"{side}^3 {case}: {entry[case]}", file=sys.stderr)
        seg, plain = entry["sxtseg_segment"], entry["monai_whole"]
        if "error" not in seg and "error" not in plain:
            entry["throughput_ratio_sxtseg_over_monai"] = plain["seconds"] / seg["seconds"]
            entry["peak_rss_ratio_sxtseg_over_monai"] = seg["peak_rss_bytes"] / max(plain["peak_rss_bytes"], 1)
            entry["voxels_per_second"] = {"sxtseg": side**3 / seg["seconds"], "monai": side**3 / plain["seconds"]}
        record["sizes"].append(entry)
    print(json.dumps(record))


if __name__ == "__main__":
    main()

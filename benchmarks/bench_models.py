"""Segmentation networks: sxtseg's MSD-net against a torch.cat MSD-net, dlsia's MSD-net and MONAI U-Nets.

Inputs (the same for every method): a random float32 volume of ``--size``^3
voxels, batch ``--batch``, 1 input channel, 3 classes; MSD-nets of width 1 with
dilations cycling 1..10 at each ``--depth``.

* ``sxtseg_msdnet``: :class:`sxtseg.models.msdnet.MSDNet` (one feature buffer,
  one autograd node, convolutions as matrix products);
* ``cat_msdnet``: the textbook implementation, defined below: one
  ``nn.Conv3d(c_i, 1, 3, dilation=d)`` per layer over ``torch.cat`` of all earlier
  maps;
* ``dlsia_msdnet``: ``dlsia.core.networks.msdnet.MixedScaleDenseNetwork``
  (``normalization=None``, ``convolution=nn.Conv3d``) when dlsia is installed;
  its plotting helpers (matplotlib, torchvision) are stubbed, since
  ``pip install dlsia`` would replace torch (install it with ``--no-deps``);
* ``monai_unet_matched``: MONAI ``UNet`` (4 levels, 1 residual unit, instance
  norm) with channels (b, 2b, 4b, 8b) picked so that its parameter count is the
  nearest to the MSD-net's at that depth;
* ``monai_unet_default``: ``sxtseg.models.build("unet")`` (16-128 channels,
  2 residual units, 1.2 M parameters), the reference of issue 5 ("a U-Net with
  9x its parameters").

Two modes per method and depth: ``forward`` (eval, no_grad) and ``train``
(forward, cross-entropy against random labels, backward).  Each case runs in a
fresh child process that builds the model and input, records its resident
memory, runs once to warm up and ``--repeats`` times measured (the slow
torch.cat and dlsia MSD-nets: once, cold, at full size); the median seconds,
voxels per second and the child's peak resident memory above the state before
the first run are reported, with ratios sxtseg / peer.  The share of the CPUs
that other processes took during a case is recorded; a fast case is re-run
(``--attempts``) while it is above 10%, since a busy core stalls PyTorch's
OpenMP threads.  One JSON record is printed on stdout, a
Markdown table on stderr.

Usage::

    python benchmarks/bench_models.py --quick            # 24^3, depth 8, 1 repeat: seconds
    python benchmarks/bench_models.py                    # 64^3, depth 50 and 100, batch 1
    python benchmarks/bench_models.py --batch 1 2 --only sxtseg_msdnet cat_msdnet
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap

METHODS = ["sxtseg_msdnet", "cat_msdnet", "dlsia_msdnet", "monai_unet_matched", "monai_unet_default"]
SLOW = ("cat_msdnet", "dlsia_msdnet")  # one cold run (no warm-up, no retry): tens of seconds each
BUSY = 0.1  # retry a case when other processes took more than this share of the CPUs during it
PER_DEPTH = ("sxtseg_msdnet", "cat_msdnet", "dlsia_msdnet", "monai_unet_matched")

CHILD = textwrap.dedent(
    """
    import json, os, statistics, sys, time
    import torch
    from torch import nn

    def status():
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024

    def cpu_ticks():
        # (busy ticks of the whole machine, ticks of this process): their difference is other processes
        fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
        own = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
        return sum(fields) - fields[3] - fields[4], int(own[11]) + int(own[12])

    class CatMSDNet(nn.Module):
        # the textbook MSD-net: every layer convolves torch.cat of all earlier maps
        def __init__(self, in_channels, out_channels, depth, dilations=range(1, 11)):
            super().__init__()
            dilations = list(dilations)
            self.convs = nn.ModuleList(
                nn.Conv3d(in_channels + i, 1, 3, padding=dilations[i % len(dilations)],
                          dilation=dilations[i % len(dilations)])
                for i in range(depth))
            self.final = nn.Conv3d(in_channels + depth, out_channels, 1)

        def forward(self, x):
            for conv in self.convs:
                x = torch.cat([x, torch.relu(conv(x))], dim=1)
            return self.final(x)

    def dlsia_msdnet(depth):
        import importlib.util, pathlib, types
        import dlsia.core
        helpers = types.ModuleType("dlsia.core.helpers")  # plotting helpers: matplotlib, torchvision
        sys.modules["dlsia.core.helpers"] = dlsia.core.helpers = helpers
        path = pathlib.Path(dlsia.__file__).parent / "core" / "networks" / "msdnet.py"
        spec = importlib.util.spec_from_file_location("dlsia_msdnet", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.MixedScaleDenseNetwork(1, 3, num_layers=depth, layer_width=1, max_dilation=10,
                                             normalization=None, convolution=nn.Conv3d)

    def count(model):
        return sum(p.numel() for p in model.parameters())

    def build(method, depth):
        from sxtseg import models
        if method == "sxtseg_msdnet":
            return models.build("msdnet", 3, 1, 3, depth=depth)
        if method == "cat_msdnet":
            return CatMSDNet(1, 3, depth)
        if method == "dlsia_msdnet":
            return dlsia_msdnet(depth)
        if method == "monai_unet_matched":
            target = count(models.build("msdnet", 3, 1, 3, depth=depth))
            def unet(b):
                return models.build("unet", 3, 1, 3, channels=(b, 2 * b, 4 * b, 8 * b), num_res_units=1)
            base = min(range(1, 33), key=lambda b: abs(count(unet(b)) - target))
            return unet(base)
        if method == "monai_unet_default":
            return models.build("unet", 3, 1, 3)
        raise ValueError(method)

    method, depth, batch, size, mode, repeats, warm_up = sys.argv[1:8]
    depth, batch, size, repeats, warm_up = int(depth), int(batch), int(size), int(repeats), warm_up == "1"
    torch.manual_seed(0)
    model = build(method, depth)
    x = torch.randn(batch, 1, size, size, size)
    target = torch.randint(0, 3, (batch, size, size, size))
    model.train(mode == "train")

    def run():
        if mode == "forward":
            with torch.no_grad():
                return model(x)
        model.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), target)
        loss.backward()
        return loss

    base, _ = status()
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM)
    busy0, own0, wall0 = *cpu_ticks(), time.perf_counter()
    if warm_up:
        run()  # oneDNN primitives, allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    _, peak = status()
    busy1, own1, wall1 = *cpu_ticks(), time.perf_counter()
    others = (busy1 - busy0 - (own1 - own0)) / os.sysconf("SC_CLK_TCK") / ((wall1 - wall0) * os.cpu_count())
    print(json.dumps({"median_seconds": statistics.median(times), "runs": times, "parameters": count(model),
                      "peak_rss_bytes": peak - base, "threads": torch.get_num_threads(), "warm_up": warm_up,
                      "other_processes_cpu_share": max(others, 0.0)}))
    """
)


def machine() -> dict:
    info = {"cores": os.cpu_count(), "python": platform.python_version(), "cpu": platform.machine()}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            info["cpu"] = next(l.split(":", 1)[1].strip() for l in cpuinfo if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return info


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("sxtseg", "torch", "monai", "numpy", "dlsia"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


def measure(method, depth, batch, size, mode, repeats, *, warm_up, attempts) -> dict:
    """One case in fresh child processes; retried while other processes load the CPUs."""
    best = None
    for attempt in range(attempts):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, method, str(depth), str(batch), str(size), mode, str(repeats),
             str(int(warm_up))], check=False, capture_output=True, text=True)
        if out.returncode != 0:
            lines = out.stderr.strip().splitlines()
            return {"error": lines[-1] if lines else f"exit code {out.returncode}"}
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["voxels_per_second"] = batch * size**3 / result["median_seconds"]
        result["attempts"] = attempt + 1
        if best is None or result["other_processes_cpu_share"] < best["other_processes_cpu_share"]:
            best = result
        if result["other_processes_cpu_share"] <= BUSY:
            break
    return best


def table(record: dict) -> str:
    header = ("| method | depth | batch | params | forward s | train s | train voxels/s | forward peak MiB "
              "| train peak MiB |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for case in record["cases"]:
        fwd, train = case["forward"], case["train"]

        def cell(result, key, scale=1.0, fmt="{:.3g}"):
            return "error" if "error" in result else fmt.format(result[key] / scale)

        params = next((r["parameters"] for r in (fwd, train) if "parameters" in r), None)
        lines.append(
            f"| {case['method']} | {case['depth'] if case['method'] in PER_DEPTH else '-'} | {case['batch']} "
            f"| {params if params is not None else '?'} | {cell(fwd, 'median_seconds')} "
            f"| {cell(train, 'median_seconds')} | {cell(train, 'voxels_per_second', fmt='{:.3g}')} "
            f"| {cell(fwd, 'peak_rss_bytes', 2**20, '{:.0f}')} | {cell(train, 'peak_rss_bytes', 2**20, '{:.0f}')} |")
    lines += ["", "| depth | batch | ratio (sxtseg / peer) | forward time | train time | train peak memory |",
              "|---|---|---|---|---|---|"]
    for key, ratios in record["ratios"].items():
        depth, batch = key.split("/")
        for peer, r in ratios.items():
            lines.append(f"| {depth} | {batch} | {peer} | {r.get('forward_time', float('nan')):.3g} "
                         f"| {r.get('train_time', float('nan')):.3g} | {r.get('train_peak_rss', float('nan')):.3g} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="24^3, depth 8, 1 repeat (CI size)")
    parser.add_argument("--size", type=int, default=None, help="edge of the cubic patch (default 64, quick 24)")
    parser.add_argument("--depth", type=int, nargs="+", default=None, help="MSD-net depths (default 50 100, quick 8)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1], help="batch sizes (default 1)")
    parser.add_argument("--repeats", type=int, default=None, help="measured runs (default 3, quick 1)")
    parser.add_argument("--only", nargs="+", choices=METHODS, help="run only these methods")
    parser.add_argument("--attempts", type=int, default=None,
                        help=f"runs of a fast case while other processes use > {BUSY:.0%} of the CPUs "
                        "(default 3, quick 1)")
    args = parser.parse_args(argv)
    size = args.size or (24 if args.quick else 64)
    depths = args.depth or ([8] if args.quick else [50, 100])
    repeats = args.repeats or (1 if args.quick else 3)
    methods = args.only or METHODS
    args.attempts = args.attempts or (1 if args.quick else 3)

    record = {"benchmark": "bench_models", "patch": [size] * 3, "in_channels": 1, "classes": 3, "width": 1,
              "dilations": "1..10 cycling", "depths": depths, "batches": args.batch, "repeats": repeats,
              "machine": machine(), "versions": versions(), "cases": [], "ratios": {},
              "notes": {"dlsia_msdnet": "dlsia's msdnet.py loaded by path with dlsia.core.helpers stubbed; "
                                        "dlsia installed with pip --no-deps (its dependencies pin another torch)",
                        "slow_peers": "cat_msdnet and dlsia_msdnet: one cold run per case at full size"}}
    for batch in args.batch:
        for depth in depths:
            for method in methods:
                if method not in PER_DEPTH and depth != depths[0]:
                    continue  # the default U-Net does not depend on the MSD-net depth
                case = {"method": method, "depth": depth, "batch": batch}
                for mode in ("forward", "train"):
                    slow = method in SLOW and not args.quick
                    case[mode] = result = measure(method, depth, batch, size, mode, 1 if slow else repeats,
                                                  warm_up=not slow, attempts=1 if slow else args.attempts)
                    print(f"{method} depth {depth} batch {batch} {mode}: " + (
                        result["error"] if "error" in result else
                        f"{result['median_seconds']:.3f} s, {result['peak_rss_bytes'] / 2**20:.0f} MiB"),
                        file=sys.stderr)
                record["cases"].append(case)
            ours = next((c for c in record["cases"] if c["method"] == "sxtseg_msdnet" and c["depth"] == depth
                         and c["batch"] == batch), None)
            ratios = {}
            for peer in record["cases"]:
                if ours is None or peer["method"] == "sxtseg_msdnet" or peer["batch"] != batch:
                    continue
                if peer["method"] in PER_DEPTH and peer["depth"] != depth:
                    continue
                r = {}
                for mode in ("forward", "train"):
                    if "error" not in ours[mode] and "error" not in peer[mode]:
                        r[f"{mode}_time"] = ours[mode]["median_seconds"] / peer[mode]["median_seconds"]
                        r[f"{mode}_peak_rss"] = ours[mode]["peak_rss_bytes"] / max(peer[mode]["peak_rss_bytes"], 1)
                if r:
                    ratios[peer["method"]] = r
            record["ratios"][f"{depth}/{batch}"] = ratios
    print(table(record), file=sys.stderr)
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()

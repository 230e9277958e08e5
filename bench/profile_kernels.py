"""Per-kernel GPU times of voxpipe's operators (torch.profiler sees every kernel the process
launches, voxpipe's included), for bench/NOTES.md: which kernel of an operator takes the time.

    python3 bench/profile_kernels.py [--out FILE]
"""
import argparse
import collections
import os
import sys

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import voxpipe  # noqa: E402

B, SHAPE = 8, (155, 240, 240)


def blobs(rng, shape, frac=0.05):
    lab = np.zeros(shape, np.uint8)
    n = int(frac * lab.size / 27)
    c = [rng.integers(0, s - 3, n) for s in shape]
    for d, h, w in zip(*c):
        lab[d:d + 2 + (d % 2), h:h + 2, w:w + 2 + (w % 2)] = 1
    return lab


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    x = torch.rand((B, 1) + SHAPE, device="cuda")
    xs = [voxpipe._as_tensor(x[i]) for i in range(B)]
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from bench_spatial import random_matrices  # the bench's rotations: scattered gathers

    mats = {"per_sample": [list(m.ravel()) for m in random_matrices(np.random.default_rng(0))]}
    lab = torch.from_numpy(blobs(rng, SHAPE)).cuda()
    small = torch.rand((2, 4, 128, 128, 128), device="cuda")
    ss = [voxpipe._as_tensor(small[i]) for i in range(2)]
    work = {
        "warp_affine linear 8x -> 128^3": lambda: voxpipe.fn.warp_affine(
            xs, matrix=mats, size=[128, 128, 128]),
        "resize cubic 8x -> 128x160x160": lambda: voxpipe.fn.resize(
            xs, size=[128, 160, 160], interp="cubic"),
        "resize antialias 8x -> 64x96x96": lambda: voxpipe.fn.resize(
            xs, size=[64, 96, 96], antialias="triangle"),
        "connected_components 155x240x240 blobs, 26-connected (the bench's)": lambda:
            voxpipe.fn.connected_components(voxpipe._as_tensor(lab), connectivity=26),
        "connected_components 155x240x240 blobs, 6-connected (the biased crop's)": lambda:
            voxpipe.fn.connected_components(voxpipe._as_tensor(lab), connectivity=6),
        "gaussian_blur 2x4x128^3 sigma 1": lambda: voxpipe.fn.gaussian_blur(ss, sigma=[1.0]),
        "chain noise+brightness+contrast+cast 2x4x128^3": lambda: voxpipe.fn.chain(
            ss, [("gaussian_noise", {"stddev": 0.1}), ("brightness", {"factor": 1.1}),
                 ("contrast", {"factor": 1.2}), ("cast", {"dtype": "float16"})]),
    }
    lines = [f"Per-kernel GPU time (torch.profiler, mean over 5 calls after a warm-up) on "
             f"{torch.cuda.get_device_name()}.", ""]
    for name, fn in work.items():
        try:
            fn()
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
                for _ in range(5):
                    fn()
                torch.cuda.synchronize()
        except Exception as e:  # report and go on
            lines += [f"### {name}", "", f"failed: {e}", ""]
            continue
        tot = collections.defaultdict(float)
        cnt = collections.Counter()
        api = collections.defaultdict(float)
        for ev in prof.events():
            if ev.device_type == torch.autograd.DeviceType.CPU and ev.name.startswith("cuda"):
                api[ev.name] += ev.cpu_time_total
            if ev.device_type == torch.autograd.DeviceType.CUDA:
                tot[ev.name[:90]] += ev.device_time_total if hasattr(ev, "device_time_total") \
                    else ev.cuda_time_total
                cnt[ev.name[:90]] += 1
        lines += [f"### {name}", "", "| kernel | calls / op | us / op |", "|---|---:|---:|"]
        for k, v in sorted(tot.items(), key=lambda kv: -kv[1]):
            lines.append(f"| `{k}` | {cnt[k] / 5:.0f} | {v / 5:.1f} |")
        lines += [f"| total | | {sum(tot.values()) / 5:.1f} |", ""]
        if api:
            lines += ["CUDA runtime calls on the host (us per op): " + ", ".join(
                f"{k} {v / 5:.1f}" for k, v in sorted(api.items(), key=lambda kv: -kv[1])[:6]), ""]
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

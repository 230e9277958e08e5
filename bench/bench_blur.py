"""Gaussian blur on the GPU (the nnU-Net chain's blur): a batch of 2 x 4 channels x 128^3 float32,
sigma 1.0 on every spatial axis, channels independent.

- voxpipe.fn.gaussian_blur (truncate 3: radius 3, three 1-D passes through float32);
- MONAI GaussianSmooth (sigma 1.0; its own truncation, 4.0: radius 4), skipped if monai is absent;
- torch: three separable conv3d passes (groups = channels, the same radius-3 kernel, replicate
  padding: torch has no half-sample symmetric pad, so borders differ; timing only);
- cupyx.scipy.ndimage.gaussian_filter (mode 'reflect', truncate chosen for radius 3), per
  sample, skipped if cupy is absent.

Times: median of 20 single calls each followed by a synchronisation, after a warm-up. Bandwidth
counts the input read once and the output written once against a measured device copy. The
max |difference| to cupyx (same kernel and border) checks the numbers.

    python3 bench/bench_blur.py [--out FILE]
"""
import argparse
import math
import os
import statistics
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import voxpipe  # noqa: E402

B, C, S = 2, 4, 128
SIGMA = 1.0


def timeit(fn, reps=20):
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def copy_bandwidth():
    x = torch.empty(1 << 28, dtype=torch.float32, device="cuda")
    y = torch.empty_like(x)
    ms = timeit(lambda: y.copy_(x), 20)
    return 2 * x.numel() * 4 / (ms * 1e-3)


def kernel1d(sigma, radius):
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return k / k.sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    a = ap.parse_args()
    x = torch.rand((B, C, S, S, S), device="cuda")
    xs = [voxpipe._as_tensor(x[i]) for i in range(B)]  # zero-copy views
    bw = copy_bandwidth()
    nbytes = 2 * x.numel() * 4
    rows = []
    radius = math.ceil(3 * SIGMA)

    def vp_blur():
        return voxpipe.fn.gaussian_blur(xs, sigma=[SIGMA])

    out = vp_blur()
    ms = timeit(vp_blur)
    rows.append(("voxpipe gaussian_blur", ms, nbytes / (ms * 1e-3) / bw))

    try:
        from monai.transforms import GaussianSmooth

        sm = GaussianSmooth(sigma=SIGMA)

        def monai_blur():
            return [sm(x[i]) for i in range(B)]

        ms = timeit(monai_blur)
        rows.append(("MONAI GaussianSmooth (radius 4)", ms, nbytes / (ms * 1e-3) / bw))
    except Exception as e:  # monai absent or failing: say so, keep going
        rows.append((f"MONAI GaussianSmooth: skipped ({type(e).__name__})", None, None))

    k = torch.tensor(kernel1d(SIGMA, radius), dtype=torch.float32, device="cuda")
    wd = k.view(1, 1, -1, 1, 1).repeat(C, 1, 1, 1, 1)
    wh = k.view(1, 1, 1, -1, 1).repeat(C, 1, 1, 1, 1)
    ww = k.view(1, 1, 1, 1, -1).repeat(C, 1, 1, 1, 1)
    F = torch.nn.functional

    def torch_blur():
        y = F.conv3d(F.pad(x, (radius, radius, 0, 0, 0, 0), mode="replicate"), ww, groups=C)
        y = F.conv3d(F.pad(y, (0, 0, radius, radius, 0, 0), mode="replicate"), wh, groups=C)
        return F.conv3d(F.pad(y, (0, 0, 0, 0, radius, radius), mode="replicate"), wd, groups=C)

    ms = timeit(torch_blur)
    rows.append(("torch separable conv3d (3 passes)", ms, nbytes / (ms * 1e-3) / bw))

    err = None
    try:
        import cupy as cp
        from cupyx.scipy import ndimage as cnd

        xc = cp.from_dlpack(x)
        trunc = radius / SIGMA  # scipy's radius int(truncate * sigma + 0.5) = ceil(3 sigma)

        def cupy_blur():
            return [cnd.gaussian_filter(xc[i], sigma=(0, SIGMA, SIGMA, SIGMA), mode="reflect",
                                        truncate=trunc) for i in range(B)]

        ref = cupy_blur()
        err = max(float(cp.abs(cp.from_dlpack(o) - r).max()) for o, r in zip(out, ref))
        ms = timeit(cupy_blur)
        rows.append(("cupyx gaussian_filter", ms, nbytes / (ms * 1e-3) / bw))
    except Exception as e:
        rows.append((f"cupyx gaussian_filter: skipped ({type(e).__name__})", None, None))

    lines = [
        "# Gaussian blur on the GPU",
        "",
        f"Batch of {B} x {C} x {S}^3 float32, sigma {SIGMA} (radius {radius}), on "
        f"{torch.cuda.get_device_name()}; median of 20 calls after a warm-up; device copy "
        f"{bw / 1e12:.2f} TB/s (read + write)."
        + (f" voxpipe vs cupyx max |difference| {err:.2e}." if err is not None else ""),
        "",
        "| implementation | ms | % of copy bandwidth (1 read + 1 write) |",
        "|---|---:|---:|",
    ]
    for name, ms, frac in rows:
        if ms is None:
            lines.append(f"| {name} |  |  |")
        else:
            lines.append(f"| {name} | {ms:.3f} | {100 * frac:.0f} % |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()

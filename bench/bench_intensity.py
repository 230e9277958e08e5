"""The nnU-Net intensity chain on the GPU (H100 host): a batch of 2 x 4 channels x 128^3
float32, per sample gaussian noise sigma ~ U(0, 0.33), gaussian blur sigma ~ U(0.5, 1.0) per
axis, brightness x U(0.7, 1.3), contrast x U(0.65, 1.5) (nnU-Net's: around each channel's
mean, clamped to its range), each with p 0.15, then cast to float16. New random parameters
every iteration.

- voxpipe unfused: the five operators one by one (eager voxpipe.fn on the torch tensors);
- voxpipe fused: the same chain as one voxpipe.fn_chain call (pointwise runs fused into one
  pass; blur between them when a sample draws it, left out when none does);
- torch: the same formulas in eager torch (randn_like, separable conv3d with reflect
  padding, mean/amin/amax per channel);
- MONAI: RandGaussianNoise / RandGaussianSmooth / RandScaleIntensity / RandAdjustContrast on
  the GPU tensors, per sample (MONAI's contrast is a gamma curve, not nnU-Net's: it is the
  peer users reach for); skipped when monai is absent;
- copy: torch clone of the batch (read + write at the copy bandwidth), the ceiling.

A second table gives the device time alone (torch.profiler: the kernels and copies each
iteration queues), unfused against fused on the same draws, which leaves the host's part of
each call out. Which operators run is random per iteration, so the time of one iteration is too: "mean" is
what a training loop pays on average (the throughput), "median" a typical iteration (blur is
drawn in 28 % of batches of 2, so the median leaves it out). Bandwidth counts 4 bytes read +
2 written per voxel (what a fused pass must move), at the median.

    python3 bench/bench_intensity.py [--out FILE] [--reps N] [--no-device-time]
"""
import argparse
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
P = 0.15


def timeit(fn, reps):
    """(median, mean) in ms of synchronised calls."""
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3, statistics.fmean(ts) * 1e3


def draw(rng):
    return (rng.uniform(0, 0.33, B).tolist(), rng.uniform(0.5, 1.0, (B, 3)).tolist(),
            rng.uniform(0.7, 1.3, B).tolist(), rng.uniform(0.65, 1.5, B).tolist(),
            int(rng.integers(1 << 31)))


def chain_args(sig, blur, bri, con):
    ps = lambda v: {"per_sample": v}  # noqa: E731
    return [("gaussian_noise", {"stddev": ps(sig), "p": P}),
            ("gaussian_blur", {"sigma": ps(blur), "p": P}),
            ("brightness", {"factor": ps(bri), "p": P}),
            ("contrast", {"factor": ps(con), "p": P}),
            ("cast", {"dtype": "float16"})]


def voxpipe_unfused(batch, rng):
    *params, seed = draw(rng)
    x = batch
    for k, (op, kw) in enumerate(chain_args(*params)):
        x = getattr(voxpipe.fn, op)(x, seed=seed + k, **kw)
    return x


def torch_blur(x, sigmas):
    """Separable Gaussian over (D, H, W) of a [C, D, H, W] tensor, radius ceil(3 sigma),
    reflect border (scipy's 'reflect' is torch's 'replicate'-free 'reflect' plus the edge:
    close enough for a timing baseline)."""
    c = x.shape[0]
    y = x[None]
    for axis, s in enumerate(sigmas):
        r = int(np.ceil(3 * s))
        k = torch.exp(-0.5 * (torch.arange(-r, r + 1, device=x.device, dtype=x.dtype) / s) ** 2)
        k = k / k.sum()
        shape = [1, 1, 1]
        shape[axis] = 2 * r + 1
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = r
        y = torch.nn.functional.pad(y, pad, mode="reflect")
        y = torch.nn.functional.conv3d(y, k.view(1, 1, *shape).repeat(c, 1, 1, 1, 1), groups=c)
    return y[0]


def torch_eager(batch, rng):
    sig, blur, bri, con, _ = draw(rng)
    outs = []
    for i, x in enumerate(batch):
        if rng.random() < P:
            x = x + torch.randn_like(x) * sig[i]
        if rng.random() < P:
            x = torch_blur(x, blur[i])
        if rng.random() < P:
            x = x * bri[i]
        if rng.random() < P:
            m = x.mean(dim=(1, 2, 3), keepdim=True)
            lo = x.amin(dim=(1, 2, 3), keepdim=True)
            hi = x.amax(dim=(1, 2, 3), keepdim=True)
            x = torch.minimum(torch.maximum((x - m) * con[i] + m, lo), hi)
        outs.append(x.half())
    return outs


def monai_chain():
    try:
        from monai.transforms import (RandAdjustContrast, RandGaussianNoise,
                                      RandGaussianSmooth, RandScaleIntensity)
    except Exception as e:  # noqa: BLE001
        return None, f"monai unavailable ({type(e).__name__})"
    noise = RandGaussianNoise(prob=P, mean=0.0, std=0.33)
    smooth = RandGaussianSmooth(sigma_x=(0.5, 1.0), sigma_y=(0.5, 1.0), sigma_z=(0.5, 1.0),
                                prob=P)
    scale = RandScaleIntensity(factors=0.3, prob=P)
    contrast = RandAdjustContrast(prob=P, gamma=(0.65, 1.5))

    def run(batch, rng):
        return [contrast(scale(smooth(noise(x)))).half() for x in batch]
    return run, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--no-device-time", action="store_true",
                    help="skip the torch.profiler table of device time per iteration")
    a = ap.parse_args()
    torch.manual_seed(0)
    g = torch.Generator(device="cuda").manual_seed(0)
    batch = [torch.randn((C, S, S, S), device="cuda", generator=g) for _ in range(B)]
    voxels = B * C * S ** 3
    moved = voxels * 6
    rows = []

    def row(name, t, note=""):
        med, mean = t
        rows.append((name, med, mean, moved / (med * 1e-3) / 1e9, note))

    whole = torch.stack(batch)
    copy = timeit(lambda: whole.clone(), a.reps)
    rows.append(("copy (torch clone, f32 -> f32)", *copy, voxels * 8 / (copy[0] * 1e-3) / 1e9,
                 "read 4 + write 4 bytes/voxel"))
    rng = np.random.default_rng(1)
    row("voxpipe, unfused (5 eager ops)", timeit(lambda: voxpipe_unfused(batch, rng), a.reps))

    def run_fused_with(b, r):
        *params, seed = draw(r)
        return voxpipe.fn_chain(b, chain_args(*params), seed=seed)

    def run_fused():
        return run_fused_with(batch, rng)
    row("voxpipe, fused (fn_chain: one pointwise pass, blur between when drawn)",
        timeit(run_fused, a.reps))
    row("torch eager, same formulas", timeit(lambda: torch_eager(batch, rng), a.reps))
    run, why = monai_chain()
    if run is not None:
        row("MONAI RandGaussianNoise+RandGaussianSmooth+RandScaleIntensity+RandAdjustContrast",
            timeit(lambda: run(batch, rng), a.reps))
    else:
        rows.append(("MONAI", None, None, None, why))

    # device time alone (the kernels and copies a call queues, from torch.profiler), fused
    # against unfused on the same draws: the host's part of the wall times above left out
    dev_rows = []
    pw_line = None
    if not a.no_device_time:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from eager_overhead import kernels
        n = min(a.reps, 50)
        for name, fn in (("voxpipe, unfused (5 eager ops)", voxpipe_unfused),
                         ("voxpipe, fused (fn_chain)", run_fused_with)):
            r = np.random.default_rng(7)
            total, _, _, by = kernels(lambda: fn(batch, r), reps=n, by_name=True)
            dev_rows.append((name, total / 1e3))
        # the fused call's pointwise part: its apply and statistics passes (the issue's
        # "pointwise part"), against the copy's bandwidth, moving 6 B/voxel
        pw = sum(v for k, v in by.items() if "apply_kernel" in k or "reduce_kernel" in k)
        copy_bw = voxels * 8 / (copy[0] * 1e-3)
        pw_bw = moved / (pw * 1e-6)
        pw_line = (f"Pointwise part of the fused call (its apply and statistics kernels, device "
                   f"time per iteration, same draws): {pw:.1f} us = {pw_bw / 1e9:.0f} GB/s at "
                   f"6 B/voxel = {100 * pw_bw / copy_bw:.0f} % of the copy's bandwidth (by kernel, "
                   "us per iteration: " + ", ".join(
                       f"{k.split('::')[-1].split('(')[0]} {v:.1f}" for k, v in sorted(by.items())
                       if "apply_kernel" in k or "reduce_kernel" in k) + ").")

    dev = torch.cuda.get_device_name()
    lines = [f"nnU-Net intensity chain (noise, blur, brightness, contrast, cast), {B} x {C} x "
             f"{S}^3 float32 -> float16, p {P} per op and sample, {dev}, {a.reps} iterations",
             "", "| implementation | median ms | mean ms | GB/s at the median (6 B/voxel) | note |",
             "|---|---:|---:|---:|---|"]
    for name, med, mean, bw, note in rows:
        f = lambda v, p=3: "" if v is None else f"{v:.{p}f}"  # noqa: E731
        lines.append(f"| {name} | {f(med)} | {f(mean)} | {f(bw, 0)} | {note} |")
    if dev_rows:
        lines += ["", f"Device time per iteration (kernels and copies, torch.profiler, mean of "
                  f"{min(a.reps, 50)} iterations with the same draws for both):", "",
                  "| implementation | device ms | note |", "|---|---:|---|"]
        for name, ms in dev_rows:
            ratio = dev_rows[0][1] / ms
            lines.append(f"| {name} | {ms:.3f} | {ratio:.2f}x less than unfused |"
                         if ms != dev_rows[0][1] else f"| {name} | {ms:.3f} |  |")
    if pw_line:
        lines += ["", pw_line]
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

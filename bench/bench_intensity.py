"""The nnU-Net intensity chain minus blur on the GPU (H100 host): a batch of 2 x 4 channels x
128^3 float32, per sample gaussian noise sigma ~ U(0, 0.33), brightness x U(0.7, 1.3),
contrast x U(0.65, 1.5) (nnU-Net's: around each channel's mean, clamped to its range), each
with p 0.15, then cast to float16. New random parameters every iteration.

- voxpipe unfused: the four operators one by one (eager voxpipe.fn on the torch tensors);
- voxpipe fused: the same chain as one call to the pointwise engine, when the binding exposes
  one (voxpipe.fn_chain / voxpipe.pointwise_chain; else the row says so: the C test
  test_pointwise_gpu prints the fused engine's times);
- torch: the same formulas in eager torch (randn_like, mean/amin/amax per channel);
- MONAI: RandGaussianNoise / RandScaleIntensity / RandAdjustContrast on the GPU tensors,
  per sample (MONAI's contrast is a gamma curve, not nnU-Net's: it is the peer users reach
  for); skipped when monai is absent;
- copy: torch clone of the batch (read + write at the copy bandwidth), the ceiling.

Bandwidth counts 4 bytes read + 2 written per voxel (what a fused pass must move).

    python3 bench/bench_intensity.py [--out FILE] [--reps N]
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
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def draw(rng):
    return (rng.uniform(0, 0.33, B).tolist(), rng.uniform(0.7, 1.3, B).tolist(),
            rng.uniform(0.65, 1.5, B).tolist(), int(rng.integers(1 << 31)))


def chain_args(sig, bri, con):
    ps = lambda v: {"per_sample": v}  # noqa: E731
    return [("gaussian_noise", {"stddev": ps(sig), "p": P}),
            ("brightness", {"factor": ps(bri), "p": P}),
            ("contrast", {"factor": ps(con), "p": P}),
            ("cast", {"dtype": "float16"})]


def voxpipe_unfused(batch, rng):
    sig, bri, con, seed = draw(rng)
    x = batch
    for k, (op, kw) in enumerate(chain_args(sig, bri, con)):
        x = getattr(voxpipe.fn, op)(x, seed=seed + k, **kw)
    return x


def fused_api():
    for name in ("fn_chain", "pointwise_chain"):
        if hasattr(voxpipe, name):
            return getattr(voxpipe, name)
    return None


def torch_eager(batch, rng):
    sig, bri, con, _ = draw(rng)
    outs = []
    for i, x in enumerate(batch):
        if rng.random() < P:
            x = x + torch.randn_like(x) * sig[i]
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
        from monai.transforms import RandAdjustContrast, RandGaussianNoise, RandScaleIntensity
    except Exception as e:  # noqa: BLE001
        return None, f"monai unavailable ({type(e).__name__})"
    noise = RandGaussianNoise(prob=P, mean=0.0, std=0.33)
    scale = RandScaleIntensity(factors=0.3, prob=P)
    contrast = RandAdjustContrast(prob=P, gamma=(0.65, 1.5))

    def run(batch, rng):
        return [contrast(scale(noise(x))).half() for x in batch]
    return run, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--reps", type=int, default=30)
    a = ap.parse_args()
    torch.manual_seed(0)
    g = torch.Generator(device="cuda").manual_seed(0)
    batch = [torch.randn((C, S, S, S), device="cuda", generator=g) for _ in range(B)]
    voxels = B * C * S ** 3
    moved = voxels * 6
    rows = []

    def row(name, ms, note=""):
        rows.append((name, ms, moved / (ms * 1e-3) / 1e9 if ms else None, note))

    whole = torch.stack(batch)
    copy_ms = timeit(lambda: whole.clone(), a.reps)
    rows.append(("copy (torch clone, f32 -> f32)", copy_ms, voxels * 8 / (copy_ms * 1e-3) / 1e9,
                 "read 4 + write 4 bytes/voxel"))
    rng = np.random.default_rng(1)
    row("voxpipe, unfused (4 eager ops)", timeit(lambda: voxpipe_unfused(batch, rng), a.reps))
    fused = fused_api()
    if fused is not None:
        def run_fused():
            sig, bri, con, seed = draw(rng)
            return fused(batch, chain_args(sig, bri, con), seed=seed)
        row("voxpipe, fused (one pointwise pass)", timeit(run_fused, a.reps))
    else:
        rows.append(("voxpipe, fused", None, None,
                     "no Python chain call yet: see test_pointwise_gpu's printed times"))
    row("torch eager, same formulas", timeit(lambda: torch_eager(batch, rng), a.reps))
    run, why = monai_chain()
    if run is not None:
        row("MONAI RandGaussianNoise+RandScaleIntensity+RandAdjustContrast",
            timeit(lambda: run(batch, rng), a.reps))
    else:
        rows.append(("MONAI", None, None, why))

    dev = torch.cuda.get_device_name()
    lines = [f"nnU-Net intensity chain minus blur, {B} x {C} x {S}^3 float32 -> float16, p {P} "
             f"per op, {dev}, median of {a.reps}", "",
             "| implementation | ms | GB/s (6 B/voxel) | note |", "|---|---|---|---|"]
    for name, ms, bw, note in rows:
        lines.append(f"| {name} | {'' if ms is None else f'{ms:.3f}'} | "
                     f"{'' if bw is None else f'{bw:.0f}'} | {note} |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

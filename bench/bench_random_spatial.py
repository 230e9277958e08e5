"""random_spatial on the GPU host, side by side in one run: per sample an image of 4 channels
float32 (155 x 240 x 240) and a uint8 label, cut to 128^3 patches with rotation, scale and
elastic deformation all applied (p = 1; no flips):

- voxpipe.fn.random_spatial on GPU tensors (zero-copy DLPack), angles 30 degrees per axis,
  scale [0.7, 1.4] per axis, elastic grid 32 voxels with magnitude 4 voxels, one resampling;
- MONAI RandAffined (prob 1, rotate_range +-30 degrees per axis, scale 0.7-1.4 per axis,
  spatial_size 128^3) then Rand3DElasticd (prob 1, sigma 9-13, magnitude 1100-1700: the
  smoothed displacement's standard deviation is then ~3-5 voxels, comparable to voxpipe's 4),
  image bilinear and label nearest, zeros padding, on GPU tensors (device cuda);
- the same MONAI transforms on CPU tensors, torch.set_num_threads(16).

Times a batch (samples one after the other for MONAI) with torch.cuda.synchronize(); medians
after a warm-up. Goals of the spatial issue: >= 10x MONAI GPU, >= 200x MONAI CPU.

    python3 bench/bench_random_spatial.py [--batches 2,8] [--cpu-batch 2] [--out FILE]
"""
import argparse
import math
import os
import statistics
import sys
import time
import traceback

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import voxpipe  # noqa: E402

C, SHAPE, P = 4, (155, 240, 240), 128


def timeit(fn, reps, cuda=True):
    fn()
    if cuda:
        torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def make_data(b, device):
    g = torch.Generator(device="cpu").manual_seed(b)
    img = torch.rand((b, C) + SHAPE, generator=g).to(device)
    lab = torch.randint(0, 4, (b,) + SHAPE, generator=g, dtype=torch.uint8).to(device)
    return img, lab


def voxpipe_fn(img, lab):
    b = img.shape[0]
    xs = [voxpipe._as_tensor(img[i]) for i in range(b)]
    ys = [voxpipe._as_tensor(lab[i]) for i in range(b)]
    it = [0]

    def run():
        it[0] += 1
        return voxpipe.fn.random_spatial(xs, ys, patch=[P] * 3, angles=[30, 30, 30],
                                         p_rotation=1, scale=[0.7, 1.4], isotropic=False,
                                         p_scale=1, p_flip=[0, 0, 0], grid_spacing=[32],
                                         magnitude=4, p_elastic=1, interp="linear",
                                         border="constant", seed=it[0])

    im, lb, _ = run()
    assert len(im) == b and tuple(im[0].shape) == (C, P, P, P), im[0].shape
    assert tuple(lb[0].shape) == (P, P, P) and lb[0].device.startswith("gpu"), lb[0].device
    return run


def monai_fn(img, lab, device):
    from monai import transforms as T

    keys = ["image", "label"]
    chain = T.Compose([
        T.RandAffined(keys=keys, prob=1.0, spatial_size=(P, P, P),
                      rotate_range=(math.pi / 6,) * 3, scale_range=((-0.3, 0.4),) * 3,
                      mode=("bilinear", "nearest"), padding_mode="zeros", device=device),
        T.Rand3DElasticd(keys=keys, prob=1.0, sigma_range=(9, 13), magnitude_range=(1100, 1700),
                         spatial_size=(P, P, P), mode=("bilinear", "nearest"),
                         padding_mode="zeros", device=device),
    ])
    b = img.shape[0]

    def run():
        outs = []
        for i in range(b):
            d = chain({"image": img[i], "label": lab[i][None]})
            outs.append((d["image"], d["label"]))
        return outs

    o = run()
    assert tuple(o[0][0].shape) == (C, P, P, P), o[0][0].shape
    assert tuple(o[0][1].shape) == (1, P, P, P), o[0][1].shape
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="2,8")
    ap.add_argument("--cpu-batch", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--cpu-reps", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(16)
    dev = torch.device("cuda:0")
    res = {}  # (batch, impl) -> ms
    errors = []
    t_start = time.perf_counter()
    for b in [int(s) for s in a.batches.split(",")]:
        img, lab = make_data(b, dev)
        for name, make in (("voxpipe GPU", lambda: voxpipe_fn(img, lab)),
                           ("MONAI GPU", lambda: monai_fn(img, lab, dev))):
            try:
                res[(b, name)] = timeit(make(), a.reps)
            except Exception as e:  # a failing peer is reported, not fatal
                errors.append(f"batch {b}, {name}: {type(e).__name__}: {e}")
                traceback.print_exc()
            print(b, name, res.get((b, name)), flush=True)
        del img, lab
        torch.cuda.empty_cache()
    b = a.cpu_batch
    img, lab = make_data(b, "cpu")
    try:
        res[(b, "MONAI CPU (16 threads)")] = timeit(monai_fn(img, lab, torch.device("cpu")),
                                                    a.cpu_reps, cuda=False)
    except Exception as e:
        errors.append(f"batch {b}, MONAI CPU: {type(e).__name__}: {e}")
        traceback.print_exc()
    print(b, "MONAI CPU", res.get((b, "MONAI CPU (16 threads)")), flush=True)
    import monai

    lines = [
        f"random_spatial: per sample an image of {C} x 155x240x240 float32 and a uint8 label -> "
        f"128^3 patches, rotation + scale + elastic all applied (p = 1). "
        f"{torch.cuda.get_device_name()}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
        f"(torch.set_num_threads(16)), MONAI {monai.__version__}. Median of {a.reps} batches "
        f"(CPU: {a.cpu_reps}) after a warm-up batch, torch.cuda.synchronize() before reading "
        f"the clock; total run {time.perf_counter() - t_start:.0f} s.",
        "",
        "| batch | implementation | ms per batch | ms per sample | voxpipe speed-up |",
        "|---:|---|---:|---:|---:|",
    ]
    for (bb, name), ms in sorted(res.items(), key=lambda kv: (kv[0][0], kv[0][1] != "voxpipe GPU")):
        vp = res.get((bb, "voxpipe GPU"))
        sp = f"{ms / vp:.1f}x" if vp else ""
        lines.append(f"| {bb} | {name} | {ms:.2f} | {ms / bb:.2f} | {sp} |")
    lines.append("")
    for bb in sorted({k[0] for k in res}):
        vp = res.get((bb, "voxpipe GPU"))
        for name, goal in (("MONAI GPU", 10), ("MONAI CPU (16 threads)", 200)):
            if vp and (bb, name) in res:
                s = res[(bb, name)] / vp
                lines.append(f"- batch {bb}: vs {name}: {s:.1f}x, goal >= {goal}x "
                             f"{'met' if s >= goal else 'NOT met'}.")
    for e in errors:
        lines.append(f"- error: {e}")
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

"""Does the foreground-biased crop matter? The MLPerf UNet3D trained from the same
initialisation for the same number of steps on synthetic KiTS-like data, fed by the MLPerf
reference chain (bench/mlperf_ref_loader.py) with the biased crop (oversampling 0.4) and with
a plain random crop (oversampling 0); then both evaluated on the same fixed patches of
held-out cases.

Reports per arm: the share of training patches holding any foreground (label > 0), the mean
foreground voxel fraction of the training patches, the last training losses, and the Dice of
kidney (1), tumour (2) and foreground (1 or 2 against background) on the validation patches
(sums of intersections and sizes over all of them; half of them cut around foreground by the
same biased rule, half uniform, from a fixed seed).

    python3 bench/fg_experiment.py --data /tmp/kits [--steps 300 --max-seconds 40] [--out FILE]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from mlperf_ref_loader import MLPerfDataset, make_loader  # noqa: E402
from train_unet3d import Trainer, ensure_data, machine_line  # noqa: E402


def val_patches(pairs, patch, n_per_case, seed):
    """Fixed validation patches: the crop of the reference chain only (no flips, no noise)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for k, (xp, yp) in enumerate(pairs):
        x, y = np.load(xp), np.load(yp)
        for j in range(n_per_case):
            ds = MLPerfDataset([], patch=patch, oversampling=1.0 if j % 2 == 0 else 0.0)
            cx, cy = ds.crop(rng, x, y)
            xs.append(torch.from_numpy(np.ascontiguousarray(cx, dtype=np.float32)))
            ys.append(torch.from_numpy(np.ascontiguousarray(cy, dtype=np.uint8)))
    return xs, ys


@torch.no_grad()
def evaluate(trainer, xs, ys, dev):
    m = trainer.model
    m.eval()
    inter = np.zeros(3)
    size = np.zeros(3)
    for x, y in zip(xs, ys):
        with torch.autocast(device_type=dev.type, dtype=trainer.dtype, enabled=trainer.amp):
            pred = m(x[None].to(dev)).argmax(1)[0]
        t = y[0].to(dev).long()
        for i, (p, q) in enumerate([(pred == 1, t == 1), (pred == 2, t == 2), (pred > 0, t > 0)]):
            inter[i] += (p & q).sum().item()
            size[i] += p.sum().item() + q.sum().item()
    m.train()
    with np.errstate(invalid="ignore"):
        return list(2 * inter / size)


def run_arm(a, name, oversampling, train_pairs, vx, vy):
    torch.manual_seed(a.seed)  # the same initialisation in both arms
    trainer = Trainer(a)
    it = make_loader(train_pairs, batch_size=a.batch, workers=a.workers, heavy=False,
                     patch=(a.patch,) * 3, oversampling=oversampling, seed=a.seed)
    fg_any = torch.zeros((), dtype=torch.int64, device=a.device)
    fg_vox = torch.zeros((), dtype=torch.float64, device=a.device)
    losses = []
    t0 = time.perf_counter()
    n = 0
    for n in range(1, a.steps + 1):
        x, y = next(it)
        x, y = x.to(a.device, non_blocking=True), y.to(a.device, non_blocking=True)
        f = (y.reshape(y.shape[0], -1) > 0)
        fg_any += f.any(1).sum()
        fg_vox += f.double().mean(1).sum()
        losses.append(trainer.step(x, y).detach().float())
        if time.perf_counter() - t0 > a.max_seconds:
            break
    train_s = time.perf_counter() - t0
    del it
    dice = evaluate(trainer, vx, vy, a.device)
    last = torch.stack(losses[-20:]).mean().item()
    return dict(arm=name, oversampling=oversampling, steps=n, train_s=train_s,
                fg_patches=fg_any.item() / (n * a.batch), fg_voxels=fg_vox.item() / (n * a.batch),
                loss_last20=last, dice_kidney=dice[0], dice_tumour=dice[1], dice_fg=dice[2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/tmp/vp-bench/kits")
    ap.add_argument("--cases", type=int, default=24)
    ap.add_argument("--scale", type=float, default=0.75)
    ap.add_argument("--val-cases", type=int, default=4)
    ap.add_argument("--val-per-case", type=int, default=4)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--max-seconds", type=float, default=40.0)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--amp", choices=["bf16", "fp16"], default="bf16")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    ap.add_argument("--filters", default="32,64,128,256,320", help="U-Net widths")
    ap.add_argument("--out")
    ap.add_argument("--json")
    a = ap.parse_args()
    a.cuda = torch.cuda.is_available()
    a.device = torch.device("cuda" if a.cuda else "cpu")
    if a.cuda:
        torch.backends.cudnn.benchmark = True
    pairs = ensure_data(a.data, a.cases, a.scale)
    if len(pairs) <= a.val_cases:
        sys.exit(f"fg_experiment: {len(pairs)} cases: need more than --val-cases {a.val_cases}")
    train_pairs, val_pairs = pairs[:-a.val_cases], pairs[-a.val_cases:]
    vx, vy = val_patches(val_pairs, (a.patch,) * 3, a.val_per_case, a.seed + 1)
    rows = [run_arm(a, "biased crop (MLPerf, p 0.4)", 0.4, train_pairs, vx, vy),
            run_arm(a, "random crop", 0.0, train_pairs, vx, vy)]
    L = ["# Biased vs random crop: MLPerf UNet3D after a fixed budget", "",
         f"Command: `python3 bench/fg_experiment.py {' '.join(sys.argv[1:])}`", "",
         f"Machine: {machine_line(a)}.", "",
         f"{len(train_pairs)} training and {len(val_pairs)} held-out synthetic KiTS-like cases; "
         f"batch {a.batch} x {a.patch}^3, {a.amp} autocast, Adam {a.lr:g}, the same initialisation; "
         f"up to {a.steps} steps or {a.max_seconds:.0f} s per arm; {len(vx)} validation patches "
         "(half around foreground, half uniform).", "",
         "| arm | steps | train s | patches with fg | fg voxels | loss (last 20) | Dice kidney "
         "| Dice tumour | Dice fg |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        L.append(f"| {r['arm']} | {r['steps']} | {r['train_s']:.1f} | {100 * r['fg_patches']:.0f}% "
                 f"| {100 * r['fg_voxels']:.2f}% | {r['loss_last20']:.3f} | {r['dice_kidney']:.3f} "
                 f"| {r['dice_tumour']:.3f} | {r['dice_fg']:.3f} |")
    L += ["", "Dice: 2|P and T| / (|P| + |T|) summed over the validation patches (nan: the class "
          "is in neither). One seed: a single run of each arm; differences of a few hundredths "
          "are within run-to-run noise."]
    text = "\n".join(L) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(rows=rows), f, indent=1)


if __name__ == "__main__":
    main()

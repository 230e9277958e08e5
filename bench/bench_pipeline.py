"""The MLPerf UNet3D chain, batches of 7 patches of 128^3 from .npy files, on the GPU host:
voxpipe (GPU nodes, 2 CPU threads) against the MLPerf reference-style loader (NumPy in a
torch DataLoader with 16 workers) and MONAI's transforms on GPU tensors, side by side in one run.

The chain is the part of MLPerf's that voxpipe has operators for today, the same for all
three (voxpipe reads only each patch's bytes; the peers load whole cases, as they do): random 128^3 crop (padded when the case is smaller), flip each axis with p 1/3
(image and label together), cast (float32, uint8), gaussian noise sigma U(0, 0.1) with p 0.1.
The biased crop and brightness join when their operators land.

Reports patches/s (median of 3 timed runs after a warm-up) and the CPU cores the loader
kept busy (process + worker CPU time over wall time).

    python3 bench/bench_pipeline.py --data DIR [--cases 24 --scale 0.75] [--out FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import voxpipe  # noqa: E402

PATCH = 128
BATCH = 7


def cpu_seconds():
    """Busy CPU seconds of the whole machine (/proc/stat): counts DataLoader workers too;
    nothing else runs on the benchmark host."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cases(data):
    with open(os.path.join(data, "dataset.json")) as f:
        ds = json.load(f)
    return [(os.path.join(data, e["image"]), os.path.join(data, e["label"])) for e in ds["training"]]


# ---- voxpipe ------------------------------------------------------------------------------
def voxpipe_loader(data, threads, gpu_cache=False):
    pipe = voxpipe.Pipeline(batch_size=BATCH, num_threads=threads, device_id=0, seed=1)
    with pipe:
        ds = os.path.join(data, "dataset.json")
        if gpu_cache:
            # the whole dataset decoded once into GPU memory (as NVIDIA's MLPerf submission
            # keeps its shard), windows cut there by one slice launch per batch
            img, lbl = voxpipe.fn.readers.dataset(ds, shuffle=True, cache_bytes=40 << 30,
                                                  cache_device="gpu")
            pos = voxpipe.fn.uniform(range=[0, 1], shape=[3])
            win = dict(rel_anchor=pos, shape=[PATCH] * 3, out_of_bounds_policy="pad",
                       device="gpu")
            img, lbl = voxpipe.fn.slice(img, **win), voxpipe.fn.slice(lbl, **win)
        else:
            # the random crop happens in the reader: only the patch's bytes are read
            img, lbl = voxpipe.fn.readers.dataset(ds, shuffle=True, random_crop=[PATCH] * 3)
        f = [voxpipe.fn.coin_flip(probability=1 / 3) for _ in range(3)]
        flips = dict(depthwise=f[0], vertical=f[1], horizontal=f[2], device="gpu")
        img = voxpipe.fn.flip(img, **flips)
        lbl = voxpipe.fn.flip(lbl, **flips)
        img = voxpipe.fn.cast(img, dtype="float32", device="gpu")
        lbl = voxpipe.fn.cast(lbl, dtype="uint8", device="gpu")
        sd = voxpipe.fn.uniform(range=[0, 0.1])
        img = voxpipe.fn.gaussian_noise(img, stddev=sd, p=0.1, device="gpu")
        pipe.set_outputs(img, lbl)
    import voxpipe.torch as vt

    loader = vt.Loader(pipe, ["image", "label"])

    def batches():
        while True:
            for b in loader:
                yield b["image"], b["label"]

    return batches()


# ---- MLPerf reference style: NumPy transforms in DataLoader workers -------------------------
class NumpyChain(torch.utils.data.Dataset):
    def __init__(self, files, n):
        self.files, self.n = files, n

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        rng = np.random.default_rng()
        x_path, y_path = self.files[idx % len(self.files)]
        x, y = np.load(x_path), np.load(y_path)
        pad = [(0, 0)] + [(0, max(0, PATCH - s)) for s in x.shape[1:]]
        if any(p[1] for p in pad):
            x, y = np.pad(x, pad), np.pad(y, pad)
        s = [rng.integers(0, n - PATCH + 1) for n in x.shape[1:]]
        sl = (slice(None),) + tuple(slice(a, a + PATCH) for a in s)
        x, y = x[sl], y[sl]
        for ax in (1, 2, 3):
            if rng.random() < 1 / 3:
                x, y = np.flip(x, ax), np.flip(y, ax)
        x, y = x.astype(np.float32), y.astype(np.uint8)
        if rng.random() < 0.1:
            x = x + rng.normal(0, rng.uniform(0, 0.1), x.shape).astype(np.float32)
        return np.ascontiguousarray(x), np.ascontiguousarray(y)


def reference_loader(data, workers):
    ds = NumpyChain(cases(data), 10**7)
    dl = torch.utils.data.DataLoader(ds, batch_size=BATCH, num_workers=workers, pin_memory=True,
                                     shuffle=True, persistent_workers=False, prefetch_factor=2)

    def batches():
        for x, y in dl:
            yield x.cuda(non_blocking=True), y.cuda(non_blocking=True)

    return batches()


# ---- MONAI transforms on GPU tensors ------------------------------------------------------
class NumpyLoad(torch.utils.data.Dataset):
    def __init__(self, files, n):
        self.files, self.n = files, n

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        x_path, y_path = self.files[idx % len(self.files)]
        return torch.from_numpy(np.load(x_path)), torch.from_numpy(np.load(y_path))


def monai_loader(data, workers):
    from monai import transforms as T

    chain = T.Compose([
        T.SpatialPadd(keys=["image", "label"], spatial_size=[PATCH] * 3),
        T.RandSpatialCropd(keys=["image", "label"], roi_size=[PATCH] * 3, random_size=False),
        T.RandFlipd(keys=["image", "label"], prob=1 / 3, spatial_axis=0),
        T.RandFlipd(keys=["image", "label"], prob=1 / 3, spatial_axis=1),
        T.RandFlipd(keys=["image", "label"], prob=1 / 3, spatial_axis=2),
        T.CastToTyped(keys=["image", "label"], dtype=[torch.float32, torch.uint8]),
        T.RandGaussianNoised(keys=["image"], prob=0.1, mean=0.0, std=0.1),
    ])
    dl = torch.utils.data.DataLoader(NumpyLoad(cases(data), 10**7), batch_size=1,
                                     num_workers=workers, pin_memory=True, shuffle=True,
                                     persistent_workers=False, prefetch_factor=4)

    def batches():
        it = iter(dl)
        while True:
            xs, ys = [], []
            for _ in range(BATCH):
                x, y = next(it)
                d = chain({"image": x[0].cuda(non_blocking=True),
                           "label": y[0].cuda(non_blocking=True)})
                xs.append(torch.as_tensor(d["image"]))
                ys.append(torch.as_tensor(d["label"]))
            yield torch.stack(xs), torch.stack(ys)

    return batches()


def measure(make, n_batches, runs=3, warmup=3):
    gen = make()
    for _ in range(warmup):  # warm-up: workers start, files reach the page cache
        x, y = next(gen)
    torch.cuda.synchronize()
    rates, cores = [], []
    for _ in range(runs):
        c0, t0 = cpu_seconds(), time.perf_counter()
        for _ in range(n_batches):
            x, y = next(gen)
            assert x.shape == (BATCH, 1, PATCH, PATCH, PATCH) and x.is_cuda, x.shape
        torch.cuda.synchronize()
        t1, c1 = time.perf_counter(), cpu_seconds()
        rates.append(n_batches * BATCH / (t1 - t0))
        cores.append((c1 - c0) / (t1 - t0))
    del gen
    return statistics.median(rates), statistics.median(cores)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--cases", type=int, default=24)
    ap.add_argument("--scale", type=float, default=0.75)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out")
    ap.add_argument("--skip", default="", help="comma list of loaders to skip")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.data, "dataset.json")):
        cli = os.path.join(ROOT, "build", "bin", "voxpipe")
        subprocess.check_call([cli, "synth", "--kind", "kits", "--cases", str(a.cases), "--scale",
                               str(a.scale), "--format", "npy", "--out", a.data])
    files = cases(a.data)
    sizes = [np.load(x, mmap_mode="r").shape for x, _ in files]
    mean_mb = np.mean([np.prod(s) * 4 for s in sizes]) / 2**20
    rows = []
    loaders = [("voxpipe (GPU, %d CPU threads)" % a.threads, lambda: voxpipe_loader(a.data, a.threads)),
               ("voxpipe-cache (dataset cached in GPU memory, %d CPU threads)" % a.threads,
                lambda: voxpipe_loader(a.data, a.threads, gpu_cache=True)),
               ("MLPerf-style NumPy loader (%d workers)" % a.workers,
                lambda: reference_loader(a.data, a.workers)),
               ("MONAI GPU transforms (%d loading workers)" % a.workers,
                lambda: monai_loader(a.data, a.workers))]
    for name, make in loaders:
        key = name.split()[0].lower()
        if key in a.skip.split(","):
            continue
        try:
            # the GPU cache fills during its first epoch: warm up past it
            warm = 3 + (len(files) // BATCH + 1 if key == "voxpipe-cache" else 0)
            rate, cores = measure(make, a.batches * (5 if key == "voxpipe-cache" else 1),
                                  warmup=warm)
            rows.append((name, rate, cores))
        except Exception as e:  # a missing peer is reported, not fatal
            rows.append((name, float("nan"), float("nan")))
            print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr)
        print(rows[-1], flush=True)
    ref = next((r for n, r, _ in rows if n.startswith("MLPerf")), float("nan"))
    mon = next((r for n, r, _ in rows if n.startswith("MONAI")), float("nan"))
    lines = [
        f"{len(files)} synthetic KiTS-like cases (mean {mean_mb:.0f} MiB float32), batches of "
        f"{BATCH} x 1 x {PATCH}^3; median of 3 runs of {a.batches} batches ({5 * a.batches} "
        f"for the GPU cache, after its filling epoch) after 3 warm-up batches; "
        f"{torch.cuda.get_device_name()}, {os.cpu_count()} CPU cores; torch "
        f"{torch.__version__}.",
        "",
        "| loader | patches/s | CPU cores busy | vs MLPerf-style | vs MONAI |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, rate, cores in rows:
        lines.append(f"| {name} | {rate:.1f} | {cores:.1f} | {rate / ref:.1f}x | {rate / mon:.1f}x |")
    lines.append("")
    lines.append("CPU cores busy = busy CPU time of the whole machine (/proc/stat, DataLoader "
                 "workers included) over wall time.")
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

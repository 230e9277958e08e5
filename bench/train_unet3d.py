"""End-to-end training comparison: MLPerf's 3D U-Net (bench/unet3d.py) trained with mixed
precision, batch 2 of 128^3 patches of synthetic KiTS-like data, fed by each loader in turn:

  ceiling          ready-made batches already on the GPU (no loader: the upper bound)
  voxpipe          voxpipe on the GPU, MLPerf chain: the cases cached in GPU memory, biased crop
                   (random_object_bbox + random_crop_window + slice), flips, cast, brightness,
                   noise (a uniform crop read from the files when the biased crop is missing)
  voxpipe-heavy    the same + random_spatial (rotation, elastic, flips) in one resampling
  voxpipe-example  (by name only) examples/mlperf_unet3d.py's pipeline as it is
  ref / ref-heavy  the MLPerf reference loader (bench/mlperf_ref_loader.py: NumPy/SciPy in a
                   DataLoader with --workers processes, pinned memory)
  monai / monai-heavy          MONAI dictionary transforms on the CPU in DataLoader workers
  monai-gpu / monai-gpu-heavy  MONAI transforms on GPU tensors (workers only load the cases)

The heavy chain adds rotation (p 0.5, +-15 degrees per axis) and elastic deformation (p 0.5,
grid 32 voxels, magnitude 4 voxels) after the crop (mlperf_ref_loader.HEAVY).

Per loader: a warm-up, then up to --steps training steps or --max-seconds, whichever ends
first. CUDA events around each step (forward, loss, backward, optimizer step) give the GPU
timeline: step time = interval between successive step starts (median and mean), GPU busy =
time inside steps / time from the first step's start to the last one's end (gaps are the
training stream waiting for data). The host may run at most 2 steps ahead of the GPU.
Results go to --out (markdown) and --json after every loader, so a run cut short keeps what
it measured.

    python3 bench/train_unet3d.py --data /tmp/kits [--loaders all] [--steps 800]
        [--max-seconds 60] [--out results/train_unet3d.md --json results/train_unet3d.json]
Tiny CPU check: --patch 64 --steps 2 --warmup 1 --workers 2 (runs on the CPU without CUDA).
"""
import argparse
import collections
import gc
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "examples"))

from mlperf_ref_loader import HEAVY, MLPerfDataset, make_loader  # noqa: E402
from unet3d import DiceCELoss, UNet3D  # noqa: E402

ALL = ["ceiling", "voxpipe", "ref", "voxpipe-heavy", "ref-heavy", "monai", "monai-heavy",
       "monai-gpu", "monai-gpu-heavy"]
EXTRA = ["voxpipe-example"]  # by name only


class LoaderTimeout(Exception):
    pass


def cli_path():
    if os.environ.get("VP_CLI"):
        return os.environ["VP_CLI"]
    return os.path.join(ROOT, os.environ.get("BUILD", "build"), "bin", "voxpipe")


def ensure_data(data, cases, scale):
    if not os.path.exists(os.path.join(data, "dataset.json")):
        subprocess.check_call([cli_path(), "synth", "--kind", "kits", "--cases", str(cases),
                               "--scale", str(scale), "--format", "npy", "--out", data])
    with open(os.path.join(data, "dataset.json")) as f:
        ds = json.load(f)
    return [(os.path.join(data, e["image"]), os.path.join(data, e["label"]))
            for e in ds["training"]]


# ---- voxpipe ----------------------------------------------------------------------------
def _has_op(name):
    import voxpipe

    try:
        getattr(voxpipe.fn, name)
        return True
    except AttributeError:
        return False


def voxpipe_pipe(a, heavy, notes, biased=True):
    """The MLPerf chain or the heavy chain, on the GPU when there is one.

    biased (and the operators are there): the cases are decoded once into a GPU cache and
    MLPerf's biased crop runs on them (random_object_bbox: classes 1, 2, k_largest 2,
    foreground_prob 0.4; random_crop_window roi: a window holding the box, or a uniform one
    inside the whole volume; slice). Otherwise the reader reads only a uniform random window.
    Operators not in this voxpipe build are left out and said so in notes."""
    import voxpipe

    gpu = a.cuda
    dev = "gpu" if gpu else "cpu"
    ds = os.path.join(a.data, "dataset.json")
    biased = (biased and not getattr(a, "vp_uniform", False) and _has_op("random_object_bbox")
              and _has_op("random_crop_window"))
    pipe = voxpipe.Pipeline(batch_size=a.batch, num_threads=a.vp_threads,
                            device_id=0 if gpu else None, seed=a.seed)
    P = [a.patch] * 3
    with pipe:
        if biased:
            img, lbl = voxpipe.fn.readers.dataset(ds, shuffle=True, pad_last_batch=True,
                                                  cache_bytes=a.vp_cache_gib << 30,
                                                  cache_device="gpu" if gpu else "cpu")
            box, _ = voxpipe.fn.random_object_bbox(lbl, classes=[1, 2], k_largest=2,
                                                   foreground_prob=0.4, format="start_end",
                                                   cache_bytes=256 << 20, device=dev)
            anchor, _, _ = voxpipe.fn.random_crop_window(lbl, mode="roi", crop_shape=P, roi=box,
                                                         device=dev)
            win = dict(anchor=anchor, shape=P, out_of_bounds_policy="pad", device=dev)
            img, lbl = voxpipe.fn.slice(img, **win), voxpipe.fn.slice(lbl, **win)
        else:
            # only the window's bytes are read
            img, lbl = voxpipe.fn.readers.dataset(ds, shuffle=True, pad_last_batch=True,
                                                  random_crop=P)
        if heavy:
            # one resampling of the patch about its centre, as the reference and MONAI chains
            # (crop first, then rotation + elastic); flips included
            c = (a.patch - 1) / 2
            img, lbl, _ = voxpipe.fn.random_spatial(
                img, lbl, patch=P, center=[c] * 3, angles=[HEAVY["angle"]] * 3,
                p_rotation=HEAVY["p_rotation"], p_scale=0.0, p_flip=[1 / 3] * 3,
                p_elastic=HEAVY["p_elastic"], grid_spacing=[HEAVY["grid_spacing"]],
                magnitude=HEAVY["magnitude"], device=dev)
        else:
            f = [voxpipe.fn.coin_flip(probability=1 / 3) for _ in range(3)]
            flips = dict(depthwise=f[0], vertical=f[1], horizontal=f[2], device=dev)
            img, lbl = voxpipe.fn.flip(img, **flips), voxpipe.fn.flip(lbl, **flips)
        img = voxpipe.fn.cast(img, dtype="float32", device=dev)
        lbl = voxpipe.fn.cast(lbl, dtype="uint8", device=dev)
        if _has_op("brightness"):
            fac = voxpipe.fn.uniform(range=[0.7, 1.3])
            img = voxpipe.fn.brightness(img, factor=fac, p=0.1, device=dev)
        sd = voxpipe.fn.uniform(range=[0, 0.1])
        img = voxpipe.fn.gaussian_noise(img, stddev=sd, p=0.1, device=dev)
        pipe.set_outputs(img, lbl)
    pipe.build()
    notes.append(("biased crop on a " + ("GPU" if gpu else "CPU") + " cache of the cases")
                 if biased else "uniform crop read by the reader (no biased crop)")
    if not _has_op("brightness"):
        notes.append("no brightness operator: left out")
    return pipe


def voxpipe_example_pipe(a, notes):
    import mlperf_unet3d

    notes.append("examples/mlperf_unet3d.py's pipeline as it is")
    return mlperf_unet3d.build(os.path.join(a.data, "dataset.json"), batch_size=a.batch,
                               device_id=0 if a.cuda else None, seed=a.seed,
                               num_threads=a.vp_threads, patch=a.patch)


def voxpipe_batches(a, heavy, notes, example=False):
    """Endless (image, label) batches; when the biased-crop graph fails to build or to give
    its first batch, the uniform-crop graph takes over (said so in notes)."""
    import voxpipe.torch as vt

    def start(biased):
        pipe = voxpipe_example_pipe(a, notes) if example else voxpipe_pipe(a, heavy, notes,
                                                                            biased)
        loader = vt.Loader(pipe, ["image", "label"])

        def gen():
            while True:
                for b in loader:
                    yield b["image"], b["label"]

        g = gen()
        first = next(g)
        return g, first

    try:
        g, first = start(biased=True)
    except Exception as e:
        if example:
            raise
        notes[:] = [n for n in notes if "cache of the cases" not in n]
        notes.append(f"biased-crop graph failed ({type(e).__name__}: "
                     f"{str(e).splitlines()[0][:150] if str(e) else ''}): uniform crop instead")
        traceback.print_exc()
        g, first = start(biased=False)

    def chained():
        yield first
        yield from g

    return chained()


# ---- the MLPerf reference loader -------------------------------------------------------------
def ref_batches(a, pairs, heavy, notes):
    notes.append(f"{a.workers} workers, pin_memory")
    it = make_loader(pairs, batch_size=a.batch, workers=a.workers, heavy=heavy,
                     patch=(a.patch,) * 3, seed=a.seed)
    dev = a.device

    def gen():
        for x, y in it:
            yield x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)

    return gen()


# ---- MONAI ----------------------------------------------------------------------------------
def monai_chain(a, heavy):
    from monai import transforms as T

    keys = ["image", "label"]
    p = [a.patch] * 3
    t = [T.SpatialPadd(keys=keys, spatial_size=p, mode="constant"),
         T.RandCropByPosNegLabeld(keys=keys, label_key="label", spatial_size=p, pos=0.4,
                                  neg=0.6, num_samples=1)]
    tail = []
    if heavy:
        tail += [T.RandAffined(keys=keys, prob=HEAVY["p_rotation"],
                               rotate_range=[math.radians(HEAVY["angle"])] * 3,
                               mode=("bilinear", "nearest"), padding_mode="zeros"),
                 # sigma 9-13 and magnitude 1100-1700 make the smoothed displacement's
                 # standard deviation ~3-5 voxels, as the others' 4 (bench_random_spatial.py)
                 T.Rand3DElasticd(keys=keys, prob=HEAVY["p_elastic"], sigma_range=(9, 13),
                                  magnitude_range=(1100, 1700), mode=("bilinear", "nearest"),
                                  padding_mode="zeros")]
    tail += [T.RandFlipd(keys=keys, prob=1 / 3, spatial_axis=0),
             T.RandFlipd(keys=keys, prob=1 / 3, spatial_axis=1),
             T.RandFlipd(keys=keys, prob=1 / 3, spatial_axis=2),
             T.CastToTyped(keys=keys, dtype=[torch.float32, torch.uint8]),
             T.RandScaleIntensityd(keys=["image"], factors=0.3, prob=0.1),
             T.RandGaussianNoised(keys=["image"], prob=0.1, mean=0.0, std=0.1)]
    return T.Compose(t), T.Compose(tail)


def _plain(t):
    t = torch.as_tensor(t)
    return t.as_subclass(torch.Tensor) if type(t) is not torch.Tensor else t


class MonaiDataset(torch.utils.data.Dataset):
    """Whole cases from .npy; with transforms, the MONAI chain runs here (in the worker)."""

    def __init__(self, pairs, length, chain=None, seed=0):
        self.pairs, self.length, self.chain, self.seed = pairs, length, chain, seed
        self._pid = None

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        xp, yp = self.pairs[i % len(self.pairs)]
        x, y = torch.from_numpy(np.load(xp)), torch.from_numpy(np.load(yp))
        if self.chain is None:
            return x, y
        if self._pid != os.getpid():  # forked workers would repeat the parent's draws
            info = torch.utils.data.get_worker_info()
            s = info.seed if info is not None else self.seed
            for c in self.chain:
                c.set_random_state(seed=s % 2**32)
            self._pid = os.getpid()
        d = self.chain[0]({"image": x, "label": y})
        d = d[0] if isinstance(d, list) else d
        d = self.chain[1](d)
        return _plain(d["image"]), _plain(d["label"])


def monai_batches(a, pairs, heavy, gpu_transforms, notes):
    import monai

    notes.append(f"MONAI {monai.__version__}, {a.workers} workers")
    head, tail = monai_chain(a, heavy)
    n = 10**7
    dev = a.device
    if not gpu_transforms:
        ds = MonaiDataset(pairs, n, (head, tail), a.seed)
        dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, drop_last=True,
                                         pin_memory=a.cuda, **_workers(a.workers, 2))

        def gen():
            for x, y in dl:
                yield x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)

        return gen()
    head.set_random_state(seed=a.seed)
    tail.set_random_state(seed=a.seed + 1)
    notes.append("transforms on " + ("GPU" if a.cuda else "CPU (no GPU)") + " tensors")
    dl = torch.utils.data.DataLoader(MonaiDataset(pairs, n), batch_size=1, shuffle=True,
                                     pin_memory=a.cuda, **_workers(a.workers, 4))

    def gen():
        it = iter(dl)
        while True:
            xs, ys = [], []
            for _ in range(a.batch):
                x, y = next(it)
                d = head({"image": x[0].to(dev, non_blocking=True),
                          "label": y[0].to(dev, non_blocking=True)})
                d = tail(d[0] if isinstance(d, list) else d)
                xs.append(_plain(d["image"]))
                ys.append(_plain(d["label"]))
            yield torch.stack(xs), torch.stack(ys)

    return gen()


def _workers(n, prefetch):
    return dict(num_workers=n, persistent_workers=True, prefetch_factor=prefetch) if n else {}


# ---- the ceiling ----------------------------------------------------------------------------
def ceiling_batches(a, pairs, notes):
    ds = MLPerfDataset(pairs, patch=(a.patch,) * 3, seed=a.seed)
    xs, ys = [], []
    for i in range(4 * a.batch):
        x, y = ds[i]
        xs.append(torch.from_numpy(x))
        ys.append(torch.from_numpy(y))
    ready = [(torch.stack(xs[k:k + a.batch]).to(a.device), torch.stack(ys[k:k + a.batch])
              .to(a.device)) for k in range(0, len(xs), a.batch)]
    notes.append(f"{len(ready)} batches made once, cycled")

    def gen():
        while True:
            yield from ready

    return gen()


# ---- training and timing ----------------------------------------------------------------------
class Trainer:
    def __init__(self, a):
        self.a = a
        torch.manual_seed(a.seed)
        filters = tuple(int(v) for v in getattr(a, "filters", "32,64,128,256,320").split(","))
        self.model = UNet3D(1, 3, filters=filters).to(a.device)
        self.loss = DiceCELoss(3)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=getattr(a, "lr", 1e-4))
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[a.amp]
        self.amp = a.cuda  # mixed precision on the GPU; the CPU check runs float32
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and a.amp == "fp16")

    def step(self, x, y):
        with torch.autocast(device_type="cuda" if self.a.cuda else "cpu", dtype=self.dtype,
                            enabled=self.amp):
            out = self.model(x)
            loss = self.loss(out, y)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        return loss


def _alarm(signum, frame):
    raise LoaderTimeout("loader watchdog: no progress in time")


def run_loader(a, trainer, batches, warmup):
    cuda = a.cuda
    for _ in range(warmup):  # workers start, page cache, cuDNN autotuning on the first loader
        x, y = next(batches)
        trainer.step(x, y)
    if cuda:
        torch.cuda.synchronize()
    keep = collections.deque(maxlen=4)  # batches the GPU may still read (host <= 2 ahead)
    evs, host_steps, waits = [], [], []
    fg = torch.zeros((), dtype=torch.int64, device=a.device)
    t0 = time.perf_counter()
    for i in range(a.steps):
        w0 = time.perf_counter()
        x, y = next(batches)
        waits.append(time.perf_counter() - w0)
        fg += (y.reshape(y.shape[0], -1) > 0).any(1).sum()
        if cuda:
            e0 = torch.cuda.Event(enable_timing=True)
            e1 = torch.cuda.Event(enable_timing=True)
            e0.record()
            trainer.step(x, y)
            e1.record()
            evs.append((e0, e1))
            if len(evs) >= 3:
                evs[-3][1].synchronize()
        else:
            s0 = time.perf_counter()
            trainer.step(x, y)
            host_steps.append((s0, time.perf_counter()))
        keep.append((x, y))
        if time.perf_counter() - t0 > a.max_seconds:
            break
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    n = len(evs) or len(host_steps)
    if cuda:
        starts = [e0 for e0, _ in evs]
        intervals = [starts[k].elapsed_time(starts[k + 1]) for k in range(n - 1)]
        intervals.append(evs[-1][0].elapsed_time(evs[-1][1]))
        busy_ms = sum(e0.elapsed_time(e1) for e0, e1 in evs)
        span_ms = evs[0][0].elapsed_time(evs[-1][1])
    else:
        intervals = [1e3 * (host_steps[k + 1][0] - host_steps[k][0]) for k in range(n - 1)]
        intervals.append(1e3 * (host_steps[-1][1] - host_steps[-1][0]))
        busy_ms = 1e3 * sum(e - s for s, e in host_steps)
        span_ms = 1e3 * (host_steps[-1][1] - host_steps[0][0])
    return dict(steps=n, wall_s=wall, step_ms_median=statistics.median(intervals),
                step_ms_mean=span_ms / n, samples_per_s=n * a.batch / (span_ms / 1e3),
                gpu_busy=busy_ms / span_ms, wait_ms_mean=1e3 * statistics.mean(waits),
                fg_fraction=int(fg.item()) / (n * a.batch))


def measure(a, trainer, name, pairs):
    notes, row = [], {"loader": name}
    t0 = time.perf_counter()
    batches = None
    try:
        # a hung loader (stuck workers) must not take the other loaders' results with it
        signal.alarm(int(3 * a.max_seconds + 120))
        batches = make_batches(a, name, pairs, notes)
        warm = a.warmup + (5 if name == "ceiling" else 0)
        if name == "voxpipe-example" or (name.startswith("voxpipe") and
                                         any("cache" in n for n in notes)):
            warm += math.ceil(len(pairs) / a.batch)  # the filling epoch reads every case
        row.update(run_loader(a, trainer, batches, warm))
    except ImportError as e:  # a peer that is not installed (MONAI) is skipped, not failed
        row["error"] = f"skipped: {e}"
    except Exception as e:
        row["error"] = f"{type(e).__name__}: {e}".replace("|", "/").replace("\n", " ")[:300]
        traceback.print_exc()
    finally:
        signal.alarm(0)
        row["notes"] = notes
        row["total_s"] = time.perf_counter() - t0
        del batches
        gc.collect()
        if a.cuda:
            torch.cuda.empty_cache()
    return row


def make_batches(a, name, pairs, notes):
    heavy = name.endswith("-heavy")
    kind = name[:-len("-heavy")] if heavy else name
    if kind == "ceiling":
        return ceiling_batches(a, pairs, notes)
    if kind == "voxpipe":
        return voxpipe_batches(a, heavy, notes)
    if kind == "voxpipe-example":
        return voxpipe_batches(a, False, notes, example=True)
    if kind == "ref":
        return ref_batches(a, pairs, heavy, notes)
    if kind == "monai":
        return monai_batches(a, pairs, heavy, False, notes)
    if kind == "monai-gpu":
        return monai_batches(a, pairs, heavy, True, notes)
    raise ValueError(f"--loaders: unknown loader {name!r} (known: {', '.join(ALL + EXTRA)})")


# ---- report -------------------------------------------------------------------------------------
def machine_line(a):
    gpu = torch.cuda.get_device_name() if a.cuda else "no GPU (CPU check)"
    try:
        import voxpipe

        vv = voxpipe.__version__
    except Exception:
        vv = "?"
    return (f"{gpu}, {os.cpu_count()} CPU cores; torch {torch.__version__}, voxpipe {vv}, "
            f"Python {platform.python_version()}")


def report(a, rows, meta):
    by = {r["loader"]: r for r in rows if "samples_per_s" in r}

    def sps(k):
        return by[k]["samples_per_s"] if k in by else float("nan")

    L = ["# Training comparison: MLPerf UNet3D, batch %d x 1 x %d^3, %s autocast" %
         (a.batch, a.patch, a.amp), "",
         f"Command: `{meta['command']}`", "", f"Machine: {meta['machine']}.", "",
         f"Data: {meta['cases']} synthetic KiTS-like cases (`voxpipe synth --kind kits`, "
         f"mean {meta['mean_mib']:.0f} MiB float32). Per loader {a.warmup}+ warm-up steps, "
         f"then up to {a.steps} steps or {a.max_seconds:.0f} s.", "",
         "| loader | chain | steps | step ms (median) | step ms (mean) | samples/s | vs ceiling "
         "| GPU busy | host wait ms | patches with fg | notes |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    ceil = sps("ceiling")
    for r in rows:
        chain = "heavy" if r["loader"].endswith("-heavy") else (
            "-" if r["loader"] == "ceiling" else "MLPerf")
        note = "; ".join(r.get("notes", []))
        if "error" in r:
            what = r["error"] if r["error"].startswith("skipped") else "FAILED: " + r["error"]
            L.append(f"| {r['loader']} | {chain} | - | - | - | - | - | - | - | - | "
                     f"{what}{'; ' + note if note else ''} |")
            continue
        L.append(f"| {r['loader']} | {chain} | {r['steps']} | {r['step_ms_median']:.1f} | "
                 f"{r['step_ms_mean']:.1f} | {r['samples_per_s']:.2f} | "
                 f"{r['samples_per_s'] / ceil:.3f} | {100 * r['gpu_busy']:.1f}% | "
                 f"{r['wait_ms_mean']:.1f} | {100 * r['fg_fraction']:.0f}% | {note} |")
    L += ["", "Step time: interval between successive step starts on the GPU timeline (CUDA "
          "events); samples/s = steps x batch / (first step start to last step end); GPU busy ="
          " time inside the training steps (forward, loss, backward, Adam) / that span; host "
          "wait = time the training loop spent in next(loader); patches with fg = share of "
          "training patches holding any label > 0.", "", "## Goals", "",
          "| goal | measured | status |", "|---|---|---|"]

    def goal(text, val, ok):
        st = "n/a" if val != val else ("met" if ok else "not met")
        L.append(f"| {text} | {val:.3f} | {st} |")

    goal("voxpipe within 3% of the ceiling, MLPerf chain (ratio of samples/s >= 0.97)",
         sps("voxpipe") / ceil, sps("voxpipe") / ceil >= 0.97)
    goal("voxpipe within 3% of the ceiling, heavy chain (>= 0.97)",
         sps("voxpipe-heavy") / ceil, sps("voxpipe-heavy") / ceil >= 0.97)
    goal("voxpipe >= 2x the MLPerf reference loader, heavy chain (ratio)",
         sps("voxpipe-heavy") / sps("ref-heavy"), sps("voxpipe-heavy") / sps("ref-heavy") >= 2)
    for k in ("voxpipe", "voxpipe-heavy"):
        b = by[k]["gpu_busy"] if k in by else float("nan")
        goal(f"GPU busy >= 97% with {k} (fraction)", b, b >= 0.97)
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/tmp/vp-bench/kits")
    ap.add_argument("--cases", type=int, default=24, help="cases to synthesise if --data is empty")
    ap.add_argument("--scale", type=float, default=0.75)
    ap.add_argument("--loaders", default="all", help="comma list, or all: " + ",".join(ALL))
    ap.add_argument("--steps", type=int, default=800, help="timed steps per loader (at most)")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="timed seconds per loader")
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--amp", choices=["bf16", "fp16"], default="bf16",
                    help="autocast dtype (fp16 adds a GradScaler)")
    ap.add_argument("--workers", type=int, default=16, help="DataLoader workers (ref, MONAI)")
    ap.add_argument("--vp-threads", type=int, default=4, help="voxpipe CPU threads")
    ap.add_argument("--vp-cache-gib", type=int, default=16,
                    help="voxpipe's case cache (GPU memory) for the biased crop")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--filters", default="32,64,128,256,320",
                    help="U-Net widths (MLPerf's by default; smaller only for quick checks)")
    ap.add_argument("--out", help="markdown report")
    ap.add_argument("--json", help="raw results")
    a = ap.parse_args()
    a.cuda = torch.cuda.is_available()
    a.device = torch.device("cuda" if a.cuda else "cpu")
    if a.cuda:
        torch.backends.cudnn.benchmark = True
    names = ALL if a.loaders == "all" else [s for s in a.loaders.split(",") if s]
    pairs = ensure_data(a.data, a.cases, a.scale)
    mean_mib = np.mean([np.prod(np.load(x, mmap_mode="r").shape) * 4 for x, _ in pairs]) / 2**20
    meta = dict(command="python3 bench/train_unet3d.py " + " ".join(sys.argv[1:]),
                machine=machine_line(a), cases=len(pairs), mean_mib=mean_mib)
    trainer = Trainer(a)
    rows = []
    signal.signal(signal.SIGALRM, _alarm)
    for name in names:
        row = measure(a, trainer, name, pairs)
        if ("error" in row and name.startswith("voxpipe") and
                any("cache of the cases" in n for n in row["notes"])):
            # the biased-crop graph failed after its first batch: measure the uniform crop
            a.vp_uniform = True
            first = row["error"]
            row = measure(a, trainer, name, pairs)
            row["notes"].insert(0, f"biased-crop run failed ({first[:150]}): uniform crop")
            a.vp_uniform = False
        rows.append(row)
        print(json.dumps(row), flush=True)
        text = report(a, rows, meta)
        if a.out:
            with open(a.out, "w") as f:
                f.write(text)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(dict(meta=meta, args={k: v for k, v in vars(a).items()
                                                if k != "device"}, rows=rows), f, indent=1)
    print(report(a, rows, meta))


if __name__ == "__main__":
    main()

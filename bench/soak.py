"""Soak test: N iterations (default 20000) of a heavy pipeline — reader random crop,
per-sample flips, random_spatial with rotation, zoom and elastic deformation, gaussian
noise — on the GPU (or the CPU), sampling the host RSS (/proc/self/status), the device
memory in use (torch.cuda.mem_get_info, else cupy, else nvidia-smi), the process's threads
and open file descriptors every --every iterations. Writes a markdown table and a verdict
(growth after warm-up) to the file given on the command line; exit status 1 when memory,
threads or descriptors grow past the tolerance (a leak).

    python3 bench/soak.py OUT.md                                  # GPU 0, 20000 iterations
    python3 bench/soak.py OUT.md --device cpu --iterations 600 --every 100   # quick, on CPU

A time budget (--max-seconds, default 230) stops the loop early, so the run stays within
about 4 minutes whatever the machine; the table then says how many iterations ran.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import voxpipe  # noqa: E402


def host_status():
    """Resident and peak resident memory (MiB) and threads, from /proc/self/status."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(val.split()[0]) / 1024.0
            elif key == "Threads":
                out[key] = int(val)
    return out


def open_fds():
    return len(os.listdir("/proc/self/fd"))


class DeviceMemory:
    """Device memory in use (MiB) on one GPU, by the first probe that works."""

    def __init__(self, device):
        self.device = device
        self.how = None
        if device < 0:
            return
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.mem_get_info(device)
                self.how, self.torch = "torch.cuda.mem_get_info", torch
                return
        except Exception:
            pass
        try:
            import cupy

            cupy.cuda.Device(device).mem_info
            self.how, self.cupy = "cupy", cupy
            return
        except Exception:
            pass
        try:
            self._smi()
            self.how = "nvidia-smi"
        except Exception:
            self.how = None

    def _smi(self):
        r = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                            "-i", str(self.device)], capture_output=True, text=True, timeout=10,
                           check=True)
        return float(r.stdout.strip().splitlines()[0])

    def used_mib(self):
        if self.how == "torch.cuda.mem_get_info":
            free, total = self.torch.cuda.mem_get_info(self.device)
            return (total - free) / 2**20
        if self.how == "cupy":
            free, total = self.cupy.cuda.Device(self.device).mem_info
            return (total - free) / 2**20
        if self.how == "nvidia-smi":
            return self._smi()
        return float("nan")


def make_data(folder, cases, shape, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for k in range(cases):
        img = rng.normal(size=(1,) + tuple(shape)).astype(np.float32)
        lbl = (rng.random(size=tuple(shape)) < 0.1).astype(np.uint8) * (1 + k % 2)
        voxpipe.save(os.path.join(folder, f"img_{k:03d}.npy"), img)
        voxpipe.save(os.path.join(folder, f"lbl_{k:03d}.npy"), lbl)


def pipeline_doc(data, device, batch, threads, crop, patch, seed):
    dev = "gpu" if device >= 0 else "cpu"
    return {
        "pipeline": {"batch_size": batch, "num_threads": threads, "device": device, "seed": seed,
                     "prefetch_queue_depth": 2},
        "reader": {"root": data, "image_glob": "img_*.npy", "label_glob": "lbl_*.npy",
                   "shuffle": True, "random_crop": [crop] * 3},
        "nodes": [
            {"op": "coin_flip", "args": {"probability": 0.5}, "outputs": ["fd"]},
            {"op": "coin_flip", "args": {"probability": 0.5}, "outputs": ["fw"]},
            {"op": "flip", "device": dev, "inputs": ["image"],
             "args": {"depthwise": {"node": "fd"}, "horizontal": {"node": "fw"}},
             "outputs": ["img_f"]},
            {"op": "flip", "device": dev, "inputs": ["label"],
             "args": {"depthwise": {"node": "fd"}, "horizontal": {"node": "fw"}},
             "outputs": ["lbl_f"]},
            {"op": "random_spatial", "device": dev, "inputs": ["img_f", "lbl_f"],
             "args": {"patch": [patch] * 3, "angles": [30, 30, 30], "p_rotation": 0.8,
                      "scale": [0.8, 1.25], "p_scale": 0.5, "p_elastic": 0.5,
                      "grid_spacing": [max(patch // 4, 2)], "magnitude": 3.0},
             "outputs": ["img_s", "lbl_s", "mat"]},
            {"op": "uniform", "args": {"range": [0.0, 0.2]}, "outputs": ["sd"]},
            {"op": "gaussian_noise", "device": dev, "inputs": ["img_s"],
             "args": {"stddev": {"node": "sd"}, "p": 0.5}, "outputs": ["img_n"]},
        ],
        "outputs": ["img_n", "lbl_s"],
    }


def consume(outs, device):
    """What a training step does with a batch: read every sample (a reduction)."""
    total = 0.0
    if device >= 0:
        try:
            import torch

            for tl in outs:
                for t in tl:
                    total += float(torch.from_dlpack(t).float().sum())
            return total
        except ImportError:
            outs = [[t.cpu() for t in tl] for tl in outs]
    for tl in outs:
        for t in tl:
            total += float(np.asarray(t).sum())
    return total


def growth(rows, key, warm):
    """Change of `key` from the first sample after warm-up to the last sample."""
    base = [r for r in rows if r["iteration"] >= warm]
    if len(base) < 2:
        return 0.0, base[0][key] if base else float("nan")
    return base[-1][key] - base[0][key], base[0][key]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="markdown file to write")
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--device", default="gpu", help="gpu, gpu:N or cpu")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--crop", type=int, default=112, help="reader crop edge (before random_spatial)")
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--case-shape", default="128,160,160")
    ap.add_argument("--data", help="folder of img_*.npy / lbl_*.npy (default: generated)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=230.0)
    ap.add_argument("--tolerance-mib", type=float, default=64.0,
                    help="allowed growth after warm-up (host RSS, device memory)")
    a = ap.parse_args()

    device = -1 if a.device == "cpu" else int(a.device.partition(":")[2] or 0)
    if device >= 0 and voxpipe.cuda_device_count() == 0:
        sys.exit("soak: no CUDA device (use --device cpu)")
    tmp = None
    data = a.data
    if not data:
        tmp = tempfile.TemporaryDirectory(prefix="vp_soak_")
        data = tmp.name
        shape = [int(x) for x in a.case_shape.split(",")]
        make_data(data, a.cases, shape, a.seed)
    doc = pipeline_doc(os.path.abspath(data), device, a.batch, a.threads, a.crop, a.patch, a.seed)
    pipe_file = os.path.join(tmp.name if tmp else tempfile.gettempdir(), "soak_pipeline.json")
    with open(pipe_file, "w") as f:
        json.dump(doc, f)
    pipe = voxpipe.Pipeline.from_file(pipe_file)
    mem = DeviceMemory(device)

    rows = []
    t0 = time.monotonic()
    last_t, last_i = t0, 0
    checksum = 0.0
    stopped_early = False

    def sample(i):
        nonlocal last_t, last_i
        now = time.monotonic()
        h = host_status()
        rows.append({"iteration": i, "elapsed": now - t0,
                     "rate": (i - last_i) / (now - last_t) if now > last_t else 0.0,
                     "rss": h.get("VmRSS", float("nan")), "hwm": h.get("VmHWM", float("nan")),
                     "dev": mem.used_mib(), "threads": h.get("Threads", 0), "fds": open_fds()})
        last_t, last_i = now, i
        r = rows[-1]
        print(f"{i:7d} {r['elapsed']:7.1f} s {r['rate']:8.1f} it/s  RSS {r['rss']:8.1f} MiB  "
              f"device {r['dev']:8.1f} MiB  threads {r['threads']}  fds {r['fds']}", flush=True)

    sample(0)
    i = 0
    for i in range(1, a.iterations + 1):
        outs = pipe.run()
        checksum += consume(outs, device)
        del outs
        if i % a.every == 0 or i == a.iterations:
            sample(i)
            if time.monotonic() - t0 > a.max_seconds and i < a.iterations:
                stopped_early = True
                break
    total = time.monotonic() - t0
    del pipe

    warm = max(a.every, rows[-1]["iteration"] // 5)
    d_rss, rss0 = growth(rows, "rss", warm)
    d_dev, dev0 = growth(rows, "dev", warm)
    d_thr, _ = growth(rows, "threads", warm)
    d_fds, _ = growth(rows, "fds", warm)
    leak = []
    if d_rss > a.tolerance_mib:
        leak.append(f"host RSS grew {d_rss:.1f} MiB")
    if d_dev == d_dev and d_dev > a.tolerance_mib:
        leak.append(f"device memory grew {d_dev:.1f} MiB")
    if d_thr > 0:
        leak.append(f"threads grew by {d_thr}")
    if d_fds > 0:
        leak.append(f"open descriptors grew by {d_fds}")

    with open(a.out, "w") as f:
        f.write("# voxpipe soak test\n\n")
        f.write(f"`python3 bench/soak.py {' '.join(sys.argv[2:]) or '(defaults)'}`: "
                f"{rows[-1]['iteration']} iterations of {a.iterations} in {total:.1f} s"
                f"{' (stopped by --max-seconds)' if stopped_early else ''}; device "
                f"{'cpu' if device < 0 else f'gpu:{device}'}, batch {a.batch}, "
                f"{a.threads} threads, reader crop {a.crop}^3, random_spatial patch "
                f"{a.patch}^3 (rotation p 0.8, zoom p 0.5, elastic p 0.5), flips, noise. "
                f"Device memory from {mem.how or 'n/a'}. voxpipe {voxpipe.__version__ if hasattr(voxpipe, '__version__') else ''}\n\n")
        f.write("| iteration | elapsed s | it/s | host RSS MiB | peak RSS MiB | device used MiB "
                "| threads | open fds |\n|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['iteration']} | {r['elapsed']:.1f} | {r['rate']:.1f} | {r['rss']:.1f} | "
                    f"{r['hwm']:.1f} | {r['dev']:.1f} | {r['threads']} | {r['fds']} |\n")
        f.write(f"\nAfter warm-up (iteration {warm} on): host RSS {d_rss:+.1f} MiB (from "
                f"{rss0:.1f}), device {d_dev:+.1f} MiB, threads {d_thr:+d}, open fds {d_fds:+d}; "
                f"tolerance {a.tolerance_mib:.0f} MiB.\n\n")
        f.write(f"Verdict: {'POSSIBLE LEAK: ' + '; '.join(leak) if leak else 'no growth'}.\n")
    print(f"wrote {a.out}; checksum {checksum:.6g}; "
          f"{'POSSIBLE LEAK: ' + '; '.join(leak) if leak else 'no growth'}")
    if tmp:
        tmp.cleanup()
    return 1 if leak else 0


if __name__ == "__main__":
    sys.exit(main())

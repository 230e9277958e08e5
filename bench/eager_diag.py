"""Eager-call diagnostics on the GPU host: host time of small calls with and without a
descriptor upload, and connected_components on the blobs label, with the CUDA runtime calls
from torch.profiler.

    python3 bench/eager_diag.py
"""
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import voxpipe  # noqa: E402
from bench_ccl import blobs  # noqa: E402


def timeit(fn, reps=50):
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


tiny = voxpipe._as_tensor(torch.rand((1, 4, 4, 4), device="cuda"))
lab = voxpipe._as_tensor(torch.from_numpy(blobs()).cuda())
small = voxpipe._as_tensor(torch.from_numpy(blobs(shape=(8, 8, 8), frac=0.3)).cuda())
work = {
    "warp_affine tiny (no upload)": lambda: voxpipe.fn.warp_affine(tiny, matrix=[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]),
    "flip tiny (batched upload)": lambda: voxpipe.fn.flip(tiny, horizontal=True),
    "gaussian_blur tiny": lambda: voxpipe.fn.gaussian_blur(tiny, sigma=[1.0]),
    "brightness tiny (pointwise)": lambda: voxpipe.fn.brightness(tiny, factor=1.1),
    "connected_components 8^3": lambda: voxpipe.fn.connected_components(small),
    "connected_components blobs 26": lambda: voxpipe.fn.connected_components(lab),
    "connected_components blobs 6": lambda: voxpipe.fn.connected_components(lab, connectivity=6),
}
for k, f in work.items():
    print(f"| {k} | {timeit(f):.3f} ms |")
from torch.profiler import ProfilerActivity, profile  # noqa: E402
for k in ("gaussian_blur tiny", "connected_components blobs 26"):
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(10):
            work[k]()
        torch.cuda.synchronize()
    print("###", k)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))

# the intensity chain's eager costs, step by step (2 x 4 x 128^3 f32 -> f16)
g = torch.Generator(device="cuda").manual_seed(0)
batch = [torch.randn((4, 128, 128, 128), device="cuda", generator=g) for _ in range(2)]
vb = [voxpipe._as_tensor(x) for x in batch]
cast = [("cast", {"dtype": "float16"})]
bri = [("brightness", {"factor": 1.1})] + cast
noi = [("gaussian_noise", {"stddev": 0.1})] + cast
con = [("contrast", {"factor": 1.2})] + cast
for name, f in {
    "torch .half() x2": lambda: [x.half() for x in batch],
    "chain cast (torch inputs)": lambda: voxpipe.fn_chain(batch, cast),
    "chain cast (voxpipe inputs)": lambda: voxpipe.fn_chain(vb, cast),
    "chain brightness+cast": lambda: voxpipe.fn_chain(vb, bri),
    "chain noise+cast": lambda: voxpipe.fn_chain(vb, noi),
    "chain contrast+cast": lambda: voxpipe.fn_chain(vb, con),
    "fn.cast (unfused one op)": lambda: voxpipe.fn.cast(vb, dtype="float16"),
}.items():
    print(f"| {name} | {timeit(f):.3f} ms |")
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    for _ in range(10):
        voxpipe.fn_chain(vb, bri)
    torch.cuda.synchronize()
print("### chain brightness+cast")
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))

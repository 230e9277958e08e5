"""Eager-call diagnostics on the GPU host: where an eager call's time goes besides its
kernels. Prints (1) the pieces of wrapping a torch tensor, (2) the intensity chain's
stages by kind with their kernels' device times, (3) connected_components at 6 and 26
connectivity with per-kernel device times, (4) warp_affine's eager time against its kernel.

    python3 bench/eager_diag.py
"""
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import voxpipe  # noqa: E402
from voxpipe import _C  # noqa: E402
from eager_overhead import host_us, kernels, timeit  # noqa: E402  (shared with the other diagnostics)


def report(name, fn):
    ms = timeit(fn)
    dev, ks, aa = kernels(fn)
    print(f"| {name} | eager {ms:.3f} ms | device {dev / 1e3:.3f} ms |\n    kernels: {ks}\n    api: {aa}")


x = torch.rand((4, 128, 128, 128), device="cuda")
print("## wrapping a torch CUDA tensor (host us)")
print(f"x.__dlpack__(): {host_us(lambda: x.__dlpack__()):.1f}")
print(f"_C.from_dlpack(x.__dlpack__()): {host_us(lambda: _C.from_dlpack(x.__dlpack__())):.1f}")
print(f"_as_tensor(x): {host_us(lambda: voxpipe._as_tensor(x)):.1f}")
print(f"torch.from_dlpack(vp tensor): "
      f"{host_us(lambda: torch.from_dlpack(voxpipe._as_tensor(x))):.1f} (with the wrap)")

g = torch.Generator(device="cuda").manual_seed(0)
batch = [torch.randn((4, 128, 128, 128), device="cuda", generator=g) for _ in range(2)]
vb = [voxpipe._as_tensor(t) for t in batch]
cast = [("cast", {"dtype": "float16"})]
print("\n## chain stages, 2 x 4 x 128^3 f32 -> f16")
print(f"| torch .half() x2 | {timeit(lambda: [t.half() for t in batch]):.3f} ms |")
for name, ops in {
    "cast": cast,
    "brightness+cast": [("brightness", {"factor": 1.1})] + cast,
    "brightness p0 +cast": [("brightness", {"factor": 1.1, "p": 0.0})] + cast,
    "noise+cast": [("gaussian_noise", {"stddev": 0.1})] + cast,
    "contrast+cast": [("contrast", {"factor": 1.2})] + cast,
    "contrast one sample+cast": [("contrast", {"factor": 1.2, "p": {"per_sample": [1.0, 0.0]}})] + cast,
}.items():
    try:
        report("chain " + name + " (vp inputs)", lambda: voxpipe.fn_chain(vb, ops, seed=3))
    except Exception as e:  # noqa: BLE001
        print(name, "failed:", e)
report("chain cast (torch inputs)", lambda: voxpipe.fn_chain(batch, cast))

print("\n## connected_components, 155x240x240 blobs")
from bench_ccl import blobs  # noqa: E402
lab = voxpipe._as_tensor(torch.from_numpy(blobs()).cuda())
for conn in (26, 6):
    report(f"ccl conn {conn}", lambda: voxpipe.fn.connected_components(lab, connectivity=conn))

print("\n## warp_affine 8 x 155x240x240 -> 128^3 linear")
import numpy as np  # noqa: E402
from bench_spatial import random_matrices  # noqa: E402
xs = [voxpipe._as_tensor(torch.rand((1, 155, 240, 240), device="cuda")) for _ in range(8)]
mats = {"per_sample": [list(m.ravel()) for m in random_matrices(np.random.default_rng(0))]}
report("warp_affine", lambda: voxpipe.fn.warp_affine(xs, matrix=mats, size=[128, 128, 128]))
report("resize linear", lambda: voxpipe.fn.resize(xs, size=[128, 160, 160]))

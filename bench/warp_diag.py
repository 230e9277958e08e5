"""Where an eager warp_affine's time goes on the GPU host (8 x 155x240x240 f32 -> 128^3,
linear): argument JSON, the binding call, the kernel, for bench_spatial's rotations and for a
translation; then resize linear to 128 x 160 x 160 (eager and device). One line per piece.

    python3 bench/warp_diag.py
"""
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import voxpipe  # noqa: E402
from voxpipe import _C  # noqa: E402
from voxpipe.pipeline import _args_json  # noqa: E402
from bench_spatial import random_matrices  # noqa: E402
from eager_overhead import host_us, kernels, timeit  # noqa: E402


xs = [voxpipe._as_tensor(torch.rand((1, 155, 240, 240), device="cuda")) for _ in range(8)]
hs = [t._h for t in xs]
rot = [list(m.ravel()) for m in random_matrices(np.random.default_rng(0))]
shift = [[1, 0, 0, 10, 0, 1, 0, 20, 0, 0, 1, 30]] * 8
for name, mats in (("rotations", rot), ("translation", shift)):
    kw = dict(matrix={"per_sample": mats}, size=[128, 128, 128])
    js = _args_json("warp_affine", kw, None)
    print(f"## {name}: json {len(js)} bytes, _args_json {host_us(lambda: _args_json('warp_affine', kw, None)):.1f} us")
    print(f"fn.warp_affine {timeit(lambda: voxpipe.fn.warp_affine(xs, **kw)):.3f} ms")
    print(f"_C.ops_call {timeit(lambda: _C.ops_call('warp_affine', hs, 8, js, 0, 1)):.3f} ms")
    small = dict(kw, size=[2, 2, 2])
    jss = _args_json("warp_affine", small, None)
    print(f"_C.ops_call to 2^3 {timeit(lambda: _C.ops_call('warp_affine', hs, 8, jss, 0, 1)):.3f} ms")
    dev, ks, aa = kernels(lambda: _C.ops_call('warp_affine', hs, 8, js, 0, 1), reps=20)
    print(f"device {dev / 1e3:.3f} ms; {ks}\n  api {aa}")

kw = dict(size=[128, 160, 160])
print(f"## resize linear: fn.resize {timeit(lambda: voxpipe.fn.resize(xs, **kw)):.3f} ms")
dev, ks, aa = kernels(lambda: voxpipe.fn.resize(xs, **kw), reps=20)
print(f"device {dev / 1e3:.3f} ms; {ks}")

"""Per-iteration times of bench_intensity's fused chain (p 0.15), with which stages each
iteration drew, to see what its median is made of.

    python3 bench/chain_diag.py
"""
import os
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import voxpipe  # noqa: E402
from bench_intensity import B, C, S, chain_args, draw  # noqa: E402

g = torch.Generator(device="cuda").manual_seed(0)
batch = [torch.randn((C, S, S, S), device="cuda", generator=g) for _ in range(B)]
vb = [voxpipe._as_tensor(x) for x in batch]
rng = np.random.default_rng(1)
rows = []
for it in range(40):
    *params, seed = draw(rng)
    args = chain_args(*params)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    voxpipe.fn_chain(batch, args, seed=seed)
    torch.cuda.synchronize()
    t1 = time.perf_counter()
    voxpipe.fn_chain(vb, args, seed=seed)
    torch.cuda.synchronize()
    t2 = time.perf_counter()
    rows.append(((t1 - t0) * 1e3, (t2 - t1) * 1e3))
a = np.array(rows[2:])
print("torch inputs: median %.3f ms, min %.3f, max %.3f" % (np.median(a[:, 0]), a[:, 0].min(), a[:, 0].max()))
print("voxpipe inputs: median %.3f ms, min %.3f, max %.3f" % (np.median(a[:, 1]), a[:, 1].min(), a[:, 1].max()))
print("sorted (torch inputs):", " ".join(f"{x:.3f}" for x in sorted(a[:, 0])))

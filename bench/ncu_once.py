"""One call of each hot kernel, for Nsight Compute (ncu --clock-control none -k regex:NAME):
connected_components on the blobs label, the pointwise chain at p 1 ("chain"), brightness +
cast ("bri"), cast alone ("cast"), contrast + cast ("con"), the issue's intensity chain with noise, blur and contrast
drawn for sample 0 of 2 ("drawn"), warp_affine of bench_spatial's batch ("warp"), its resize ("resize").

    ncu --clock-control none --section SpeedOfLight -k regex:k_local python3 bench/ncu_once.py ccl
"""
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import voxpipe  # noqa: E402
from bench_ccl import blobs  # noqa: E402

what = sys.argv[1:] or ["ccl", "chain"]
if "ccl" in what:
    lab = voxpipe._as_tensor(torch.from_numpy(blobs()).cuda())
    voxpipe.fn.connected_components(lab, connectivity=26)
if "chain" in what:
    small = torch.rand((2, 4, 128, 128, 128), device="cuda")
    ss = [voxpipe._as_tensor(small[i]) for i in range(2)]
    voxpipe.fn.chain(ss, [("gaussian_noise", {"stddev": 0.1}), ("brightness", {"factor": 1.1}),
                          ("contrast", {"factor": 1.2}), ("cast", {"dtype": "float16"})])
if "drawn" in what:
    small = torch.rand((2, 4, 128, 128, 128), device="cuda")
    ss = [voxpipe._as_tensor(small[i]) for i in range(2)]
    on = {"per_sample": [1.0, 0.0]}
    voxpipe.fn.chain(ss, [("gaussian_noise", {"stddev": 0.1, "p": on}),
                          ("gaussian_blur", {"sigma": [0.8, 0.7, 0.9], "p": on}),
                          ("brightness", {"factor": 1.1, "p": on}),
                          ("contrast", {"factor": 1.2, "p": on}), ("cast", {"dtype": "float16"})])
if "con" in what:
    small = torch.rand((2, 4, 128, 128, 128), device="cuda")
    ss = [voxpipe._as_tensor(small[i]) for i in range(2)]
    voxpipe.fn.chain(ss, [("contrast", {"factor": 1.2}), ("cast", {"dtype": "float16"})])
if "bri" in what or "cast" in what:
    small = torch.rand((2, 4, 128, 128, 128), device="cuda")
    ss = [voxpipe._as_tensor(small[i]) for i in range(2)]
    ops = [("cast", {"dtype": "float16"})]
    if "bri" in what:
        ops = [("brightness", {"factor": 1.1})] + ops
    voxpipe.fn.chain(ss, ops)
if "warp" in what or "resize" in what:
    from bench_spatial import random_matrices  # noqa: E402
    xs = [voxpipe._as_tensor(torch.rand((1, 155, 240, 240), device="cuda")) for _ in range(8)]
if "resize" in what:
    voxpipe.fn.resize(xs, size=[128, 160, 160])
if "warp" in what:
    mats = {"per_sample": [list(m.ravel()) for m in random_matrices(np.random.default_rng(0))]}
    voxpipe.fn.warp_affine(xs, matrix=mats, size=[128, 128, 128])
torch.cuda.synchronize()

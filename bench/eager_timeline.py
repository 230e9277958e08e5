"""Where one eager GPU call's wall time goes, from torch.profiler's timeline (GPU host): for
each call, the host's time before its first CUDA API call, each API call, the kernels
(start relative to the call's start, duration), and the host's time after the last API
call. Median over the repetitions, one block per case: warp_affine and resize of
bench_spatial, and the intensity chain of bench_intensity (fused and unfused) with each
operator forced on for sample 0 only (p per sample), so the cost of each draw shows.

    python3 bench/eager_timeline.py [--reps N]
"""
import argparse
import os
import statistics
import sys

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import voxpipe  # noqa: E402
from bench_spatial import random_matrices  # noqa: E402
from eager_overhead import timeit as wall_ms  # noqa: E402  (median ms of synchronised calls)

CUDA = torch.autograd.DeviceType.CUDA


def timeline(label, fn, reps):
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            with record_function("vp_call"):
                fn()
            torch.cuda.synchronize()
    evs = list(prof.events())
    calls = sorted((e for e in evs if e.name == "vp_call"), key=lambda e: e.time_range.start)
    apis = [e for e in evs if e.device_type != CUDA and e.name.startswith("cuda")]
    kers = [e for e in evs if e.device_type == CUDA and e.name != "vp_call"]
    per = []
    for c in calls:
        t0, t1 = c.time_range.start, c.time_range.end
        a = sorted((e for e in apis if t0 <= e.time_range.start < t1),
                   key=lambda e: e.time_range.start)
        k = sorted((e for e in kers if t0 <= e.time_range.start < t1),
                   key=lambda e: e.time_range.start)
        per.append((t1 - t0, t0, t1, a, k))
    if not per:
        print(f"## {label}: no calls recorded")
        return
    walls = [p[0] for p in per]
    dev = [sum(e.time_range.end - e.time_range.start for e in p[4]) for p in per]
    pre = [(p[3][0].time_range.start - p[1]) if p[3] else p[0] for p in per]
    post = [(p[2] - p[3][-1].time_range.end) if p[3] else 0 for p in per]
    print(f"## {label}: wall (profiled) median {statistics.median(walls):.1f} us, device "
          f"{statistics.median(dev):.1f} us, host before the first API call "
          f"{statistics.median(pre):.1f} us, after the last {statistics.median(post):.1f} us")
    med = sorted(per, key=lambda p: p[0])[len(per) // 2]
    _, t0, t1, a, k = med
    rows = [(e.time_range.start - t0, e.time_range.end - e.time_range.start, "api", e.name)
            for e in a]
    rows += [(e.time_range.start - t0, e.time_range.end - e.time_range.start, "gpu", e.name[:70])
             for e in k]
    for off, dur, kind, name in sorted(rows):
        print(f"  {off:8.1f} +{dur:7.1f}  {kind} {name}")
    print(f"  {t1 - t0:8.1f}          end")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    a = ap.parse_args()
    n = a.reps
    small = torch.zeros(16, device="cuda")
    print(f"harness floor: torch add_ + synchronize {wall_ms(lambda: small.add_(1), 200) * 1e3:.1f} us")

    x = torch.rand((8, 1, 155, 240, 240), device="cuda")
    xs = [voxpipe._as_tensor(x[i]) for i in range(8)]
    rot = [list(m.ravel()) for m in random_matrices(np.random.default_rng(0))]
    for size in ([2, 2, 2], [128, 128, 128]):
        kw = dict(matrix={"per_sample": rot}, size=size, interp="linear", border="constant")
        f = lambda kw=kw: voxpipe.fn.warp_affine(xs, **kw)  # noqa: E731
        print(f"\nwarp_affine -> {size}: wall {wall_ms(f, n) * 1e3:.1f} us")
        timeline(f"warp_affine -> {size}", f, n)
    f = lambda: voxpipe.fn.resize(xs, size=[128, 160, 160])  # noqa: E731
    print(f"\nresize linear: wall {wall_ms(f, n) * 1e3:.1f} us")
    timeline("resize linear", f, n)
    x = xs = None  # free the 2.3 GB batch before the chain cases

    g = torch.Generator(device="cuda").manual_seed(0)
    batch = [torch.randn((4, 128, 128, 128), device="cuda", generator=g) for _ in range(2)]
    ps = lambda v: {"per_sample": v}  # noqa: E731
    base = [("gaussian_noise", {"stddev": ps([0.2, 0.1])}),
            ("gaussian_blur", {"sigma": ps([[0.7, 0.8, 0.9], [0.6, 0.6, 0.6]])}),
            ("brightness", {"factor": ps([1.2, 0.8])}),
            ("contrast", {"factor": ps([1.3, 0.7])}),
            ("cast", {"dtype": "float16"})]
    for on in (None, "gaussian_noise", "gaussian_blur", "brightness", "contrast"):
        ops = [(name, dict(kw, p=ps([1.0 if name == on else 0.0, 0.0])) if name != "cast"
                else kw) for name, kw in base]

        def fused(ops=ops):
            return voxpipe.fn_chain(batch, ops, seed=5)

        def unfused(ops=ops):
            y = batch
            for k, (name, kw) in enumerate(ops):
                y = getattr(voxpipe.fn, name)(y, seed=5 + k, **kw)
            return y
        tag = f"chain, {on or 'nothing'} drawn for sample 0"
        print(f"\n{tag}: wall fused {wall_ms(fused, n) * 1e3:.1f} us, unfused "
              f"{wall_ms(unfused, n) * 1e3:.1f} us")
        timeline(f"{tag}, fused", fused, n)
        timeline(f"{tag}, unfused", unfused, n)


if __name__ == "__main__":
    main()

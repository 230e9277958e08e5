"""Where an eager GPU call's time goes (H100 host): the same warp_affine on a batch of 8 GPU
volumes of 155 x 240 x 240 float32, to a tiny output (2^3: the host path alone) and to 128^3,
through the public function and through the binding's ops_call directly; plus the CUDA
runtime calls per call from torch.profiler.

    python3 bench/eager_overhead.py
"""
import collections
import os
import statistics
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import voxpipe  # noqa: E402
from voxpipe import _voxpipe as _C  # noqa: E402
from voxpipe.pipeline import _args_json  # noqa: E402


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


def host_us(fn, reps=2000):
    """Host microseconds per call, no synchronisation (the call path alone)."""
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps * 1e6


def kernels(fn, reps=5, by_name=False):
    """(device us per call, kernels' summary, API calls' summary[, {kernel name: us per call}])."""
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
    tot = collections.defaultdict(float)
    api = collections.defaultdict(float)
    for ev in prof.events():
        if ev.device_type == torch.autograd.DeviceType.CUDA:
            tot[ev.name[:60]] += ev.device_time_total
        elif ev.name.startswith("cuda"):
            api[ev.name] += ev.cpu_time_total
    ks = ", ".join(f"{k} {v / reps:.1f}" for k, v in sorted(tot.items(), key=lambda kv: -kv[1]))
    aa = ", ".join(f"{k} {v / reps:.1f}" for k, v in sorted(api.items(), key=lambda kv: -kv[1])[:6])
    if by_name:
        return sum(tot.values()) / reps, ks, aa, {k: v / reps for k, v in tot.items()}
    return sum(tot.values()) / reps, ks, aa


def main():
    x = torch.rand((8, 1, 155, 240, 240), device="cuda")
    xs = [voxpipe._as_tensor(x[i]) for i in range(8)]
    M = [1, 0, 0, 10, 0, 1, 0, 20, 0, 0, 1, 30]
    rows = []
    for size in ([2, 2, 2], [128, 128, 128]):
        kw = dict(matrix=M, size=size, interp="linear", border="constant")
        js = _args_json("warp_affine", kw, None)
        hs = [t._h for t in xs]
        rows.append((f"fn.warp_affine -> {size[0]}^3", timeit(lambda: voxpipe.fn.warp_affine(xs, **kw))))
        rows.append((f"_C.ops_call -> {size[0]}^3", timeit(lambda: _C.ops_call("warp_affine", hs, 8, js, 0, 1))))
        rows.append((f"fn.warp_affine 1 sample -> {size[0]}^3",
                     timeit(lambda: voxpipe.fn.warp_affine(xs[0], **kw))))
    rows.append(("_as_tensor x8 (torch views)", timeit(lambda: [voxpipe._as_tensor(x[i]) for i in range(8)])))
    # the intensity chain's call path on tiny and on real inputs: Python + C + CUDA API
    # (tiny) against the kernel (real); torch's .half() for scale
    for shape in ((4, 4, 4, 4), (4, 128, 128, 128)):
        b = [torch.rand(shape, device="cuda") for _ in range(2)]
        vb = [voxpipe._as_tensor(t) for t in b]
        ops = [("brightness", {"factor": 1.1}), ("cast", {"dtype": "float16"})]
        names = [n for n, _ in ops]
        jss = [_args_json(n, k, None) for n, k in ops]
        hs2 = [t._h for t in vb]
        tag = "x".join(map(str, shape))
        rows.append((f"torch .half() x2 {tag}", timeit(lambda: [t.half() for t in b])))
        rows.append((f"fn_chain torch inputs {tag}", timeit(lambda: voxpipe.fn_chain(b, ops))))
        rows.append((f"fn_chain voxpipe inputs {tag}", timeit(lambda: voxpipe.fn_chain(vb, ops))))
        rows.append((f"_C.ops_call_chain {tag}",
                     timeit(lambda: _C.ops_call_chain(names, jss, hs2, 2, 0))))
    bc = [torch.rand((4, 4, 4, 4)) for _ in range(2)]
    rows.append(("fn_chain CPU 4^3 (no CUDA at all)",
                 timeit(lambda: voxpipe.fn_chain(bc, [("brightness", {"factor": 1.1}),
                                                      ("cast", {"dtype": "float16"})]))))
    rows.append(("torch.cuda.synchronize alone", timeit(lambda: None)))
    for r in rows:
        print(f"| {r[0]} | {r[1]:.3f} ms |")
    kw = dict(matrix=M, size=[2, 2, 2], interp="linear", border="constant")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(20):
            voxpipe.fn.warp_affine(xs, **kw)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()

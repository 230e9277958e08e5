"""Chrome traces (torch.profiler) of a few eager calls, to see on one timeline where the host
waits: the intensity chain's cast on torch and on voxpipe inputs, contrast + cast, and
connected_components at 26-connectivity. Writes DIR/<name>.json and prints, per call, the
host API calls and kernels in time order (us from the call's start).

    python3 bench/trace_calls.py DIR
"""
import json
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import voxpipe  # noqa: E402
from bench_ccl import blobs  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "."
g = torch.Generator(device="cuda").manual_seed(0)
batch = [torch.randn((4, 128, 128, 128), device="cuda", generator=g) for _ in range(2)]
vb = [voxpipe._as_tensor(t) for t in batch]
cast = [("cast", {"dtype": "float16"})]
lab = voxpipe._as_tensor(torch.from_numpy(blobs()).cuda())
work = {
    "cast_torch": lambda: voxpipe.fn_chain(batch, cast),
    "cast_vp": lambda: voxpipe.fn_chain(vb, cast),
    "contrast": lambda: voxpipe.fn_chain(vb, [("contrast", {"factor": 1.2})] + cast),
    "ccl26": lambda: voxpipe.fn.connected_components(lab),
}
for name, fn in work.items():
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            with torch.profiler.record_function("CALL"):
                fn()
        torch.cuda.synchronize()
    path = os.path.join(out, name + ".json")
    prof.export_chrome_trace(path)
    ev = [e for e in json.load(open(path))["traceEvents"] if e.get("ph") == "X"]
    calls = sorted([e for e in ev if e["name"] == "CALL"], key=lambda e: e["ts"])
    c = calls[-1]
    t0, t1 = c["ts"], c["ts"] + c["dur"]
    print(f"### {name}: last call {c['dur']:.1f} us")
    for e in sorted(ev, key=lambda e: e["ts"]):
        if e is c or e["ts"] + e.get("dur", 0) < t0 or e["ts"] > t1 + 50:
            continue
        if e.get("cat") in ("cuda_runtime", "kernel", "gpu_memcpy", "gpu_memset", "cuda_driver"):
            print(f"  {e['ts'] - t0:8.1f} +{e.get('dur', 0):7.1f}  {e.get('cat', ''):12s} {e['name'][:70]}")

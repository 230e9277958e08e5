"""CPU connected-component labelling: voxpipe against scipy.ndimage.label and cc3d
(connected-components-3d), on one core and on all cores.

Volumes (uint8, the generators of bench/bench_ccl.py):
  blobs   155x240x240, ~13,000 small boxes at ~5 % foreground;
  cubes   a Bernoulli(0.05) grid upsampled 4x (256^3 by default, --cubes 512 for 512^3);
  kits    a KiTS-like label map (`voxpipe synth --kind kits`) when the CLI is built,
          binarised (cc3d would label its kidney and tumour values apart).
Connectivity 26 everywhere (scipy gets generate_binary_structure(3, 3)).

"1 core": scipy, cc3d and voxpipe run in a child process pinned with `taskset -c 0`
(voxpipe's eager pool still has one thread per online core, all on that core, as in
bench_ccl.py's cpu_one_thread). "all cores": voxpipe in this process. Each cell is the
median of --runs calls after one warm-up, output allocation included (every tool returns
a fresh array). --cpu-time reports process CPU time instead of wall time: on a machine
shared with other jobs it is the steadier measure of single-core cost (it is meaningless
for the all-cores column, which is then left out).

Every tool's labelling is checked against scipy's (same partition and count) before timing.

  python3 bench/bench_ccl_cpu.py [--runs 15] [--cubes 256] [--cpu-time] [--skip-kits]
  VOXPIPE_PYTHON=/path/to/python python3 bench/bench_ccl_cpu.py   # another voxpipe build
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.ndimage as ndi

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# VOXPIPE_PYTHON: another build's package folder (e.g. an older one, to compare)
sys.path.insert(0, os.environ.get("VOXPIPE_PYTHON", os.path.join(ROOT, "python")))
sys.path.insert(0, HERE)
import voxpipe  # noqa: E402
from bench_ccl import blobs, kits  # noqa: E402

ST26 = ndi.generate_binary_structure(3, 3)


def cubes(n, seed=0):
    rng = np.random.default_rng(seed)
    small = (rng.random((n // 4,) * 3) < 0.05).astype(np.uint8)
    return small.repeat(4, 0).repeat(4, 1).repeat(4, 2)


def tools():
    """name -> callable(a) returning int32/uint labels (numbering as the tool likes)."""
    out = {"scipy": lambda a: ndi.label(a, structure=ST26)[0]}
    try:
        import cc3d
        out["cc3d"] = lambda a: cc3d.connected_components(a, connectivity=26)
    except ImportError:
        pass
    out["voxpipe"] = lambda a: np.asarray(voxpipe.fn.connected_components(a)[0])
    return out


def timed(fn, runs, cpu):
    clock = time.process_time if cpu else time.perf_counter
    fn()
    ts = []
    for _ in range(runs):
        t = clock()
        fn()
        ts.append(clock() - t)
    return float(np.median(ts)) * 1e3


def same_partition(got, want):
    """One-to-one correspondence of nonzero labels (scipy's numbering may differ)."""
    g, w = got.ravel().astype(np.int64), want.ravel().astype(np.int64)
    if not np.array_equal(g == 0, w == 0):
        return False
    pairs = np.unique(np.stack([g[g > 0], w[w > 0]]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def measure(path, runs, cpu):
    """All tools on the volume in `path` in this process: {tool: ms}."""
    a = np.load(path)
    want = ndi.label(a, structure=ST26)[0]
    res = {}
    for name, fn in tools().items():
        if not same_partition(fn(a), want):
            raise SystemExit("%s disagrees with scipy on %s" % (name, path))
        res[name] = timed(lambda: fn(a), runs, cpu)
    return res


def one_core(path, runs, cpu):
    cmd = ["taskset", "-c", "0", sys.executable, os.path.abspath(__file__), "--child", path,
           "--runs", str(runs)] + (["--cpu-time"] if cpu else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit("child failed:\n" + r.stdout + r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--cubes", type=int, default=256)
    ap.add_argument("--cpu-time", action="store_true")
    ap.add_argument("--skip-kits", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.runs, args.cpu_time)))
        return
    vols = [("155x240x240 blobs", blobs()), ("%d^3 cubes" % args.cubes, cubes(args.cubes))]
    k = None if args.skip_kits else kits()
    if k is not None:
        vols.append(("KiTS-like %s" % "x".join(map(str, k.shape)), (k != 0).astype(np.uint8)))
    ncores = os.cpu_count()
    unit = "CPU ms" if args.cpu_time else "ms"
    head = ["volume", "components", "fg %", "scipy 1 core", "cc3d 1 core", "voxpipe 1 core",
            "voxpipe/cc3d", "scipy/voxpipe"]
    if not args.cpu_time:
        head.append("voxpipe %d cores" % ncores)
    print("median of %d calls, %s" % (args.runs, unit))
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, a in vols:
        with tempfile.NamedTemporaryFile(suffix=".npy", delete=False) as f:
            np.save(f, a)
        try:
            one = one_core(f.name, args.runs, args.cpu_time)
            if not args.cpu_time:
                allc = measure(f.name, args.runs, False)
        finally:
            os.unlink(f.name)
        n = int(np.asarray(voxpipe.fn.connected_components(a)[1]))
        cc = one.get("cc3d", float("nan"))
        row = [name, str(n), "%.1f" % (100.0 * a.mean()), "%.1f" % one["scipy"], "%.1f" % cc,
               "%.1f" % one["voxpipe"], "%.2f" % (one["voxpipe"] / cc),
               "%.1f" % (one["scipy"] / one["voxpipe"])]
        if not args.cpu_time:
            row.append("%.1f" % allc["voxpipe"])
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()

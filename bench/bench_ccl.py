"""Connected-component labelling: voxpipe (GPU and CPU) against
cupyx.scipy.ndimage.label, scipy.ndimage.label and cc3d (when importable).

Volumes (uint8):
  blobs   155x240x240, ~14,000 small blobs at ~5 % foreground: boxes of
          2..4 voxels per side at uniform random positions (overlaps merge
          a few), drawn until 5 % of the voxels are set;
  cubes   512^3: a 128^3 Bernoulli(0.05) grid upsampled 4x (4^3 cubes,
          face-touching ones merge);
  kits    a KiTS-like label map (`voxpipe synth --kind kits`), when the CLI
          is found (build/bin/voxpipe).
Connectivity 26 (full) for all tools except where noted (scipy/cupyx get
generate_binary_structure(3, 3)). GPU times: median over runs after warm-up,
CUDA events around each eager call (output allocation included). CPU:
median wall time; voxpipe "1 thread" runs under `taskset -c 0` in a child
process (its pool then shares one core), "N threads" on all cores.

  python3 bench/bench_ccl.py [--runs 20] [--cpu-only] [--skip-512]
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.ndimage as ndi

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import voxpipe  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ST26 = ndi.generate_binary_structure(3, 3)


def blobs(seed=0, shape=(155, 240, 240), frac=0.05):
    rng = np.random.default_rng(seed)
    a = np.zeros(shape, np.uint8)
    n = 0
    target = frac * a.size
    while a.sum(dtype=np.int64) < target:
        m = 2000
        c = rng.integers(0, shape, (m, 3))
        s = rng.integers(2, 5, (m, 3))
        for (z, y, x), (dz, dy, dx) in zip(c, s):
            a[z:z + dz, y:y + dy, x:x + dx] = 1
        n += m
    return a


def cubes(seed=0):
    rng = np.random.default_rng(seed)
    small = (rng.random((128, 128, 128)) < 0.05).astype(np.uint8)
    return small.repeat(4, 0).repeat(4, 1).repeat(4, 2)


def kits():
    cli = os.path.join(ROOT, "build", "bin", "voxpipe")
    if not os.path.exists(cli):
        return None
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([cli, "synth", "--kind", "kits", "--out", d, "--format", "npy"],
                           capture_output=True)
        files = glob.glob(os.path.join(d, "**", "*_y.npy"), recursive=True)
        if r.returncode or not files:
            return None
        return np.load(files[0]).astype(np.uint8).squeeze()


def median_wall(fn, runs):
    fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)) * 1e3


def gpu_time(fn, runs, cp):
    for _ in range(3):
        fn()
    cp.cuda.Device().synchronize()
    ts = []
    for _ in range(runs):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(cp.cuda.get_elapsed_time(a, b))
    return float(np.median(ts))


def cpu_one_thread(path, runs):
    """voxpipe CPU on one core, in a child process."""
    code = ("import sys,time,numpy as np;sys.path.insert(0,%r);import voxpipe;"
            "a=np.load(%r);f=lambda:voxpipe.fn.connected_components(a);f();ts=[]\n"
            "for _ in range(%d):\n t=time.perf_counter();f();ts.append(time.perf_counter()-t)\n"
            "print(np.median(ts)*1e3)") % (os.path.join(ROOT, "python"), path, runs)
    r = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True,
                       text=True)
    return float(r.stdout.strip()) if r.returncode == 0 else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--cpu-only", action="store_true")
    ap.add_argument("--skip-512", action="store_true")
    args = ap.parse_args()
    try:
        import cc3d
    except ImportError:
        cc3d = None
    cp = None
    if not args.cpu_only:
        try:
            import cupy as cp
            import cupyx.scipy.ndimage as cndi
        except ImportError:
            cp = None
    vols = [("155x240x240 blobs", blobs())]
    if not args.skip_512:
        vols.append(("512^3 cubes", cubes()))
    k = kits()
    if k is not None:
        vols.append(("KiTS-like %s" % "x".join(map(str, k.shape)), k))
    rows = []
    for name, a in vols:
        lab, n = ndi.label(a, structure=ST26)
        got = voxpipe.fn.connected_components(a)
        assert int(np.asarray(got[1])) == n, "voxpipe and scipy disagree on the count"
        r = {"volume": name, "components": n, "fg %": 100.0 * a.mean()}
        runs_cpu = max(3, args.runs // 4)
        r["scipy (1 thread)"] = median_wall(lambda: ndi.label(a, structure=ST26), runs_cpu)
        if cc3d is not None:
            r["cc3d"] = median_wall(lambda: cc3d.connected_components(a, connectivity=26),
                                    runs_cpu)
        r["voxpipe CPU, %d threads" % os.cpu_count()] = median_wall(
            lambda: voxpipe.fn.connected_components(a), runs_cpu)
        with tempfile.NamedTemporaryFile(suffix=".npy", delete=False) as f:
            np.save(f, a)
        r["voxpipe CPU, 1 core"] = cpu_one_thread(f.name, runs_cpu)
        os.unlink(f.name)
        if cp is not None:
            d = cp.asarray(a)
            st = cp.asarray(ST26)
            r["cupyx label"] = gpu_time(lambda: cndi.label(d, structure=st), args.runs, cp)
            r["voxpipe GPU"] = gpu_time(lambda: voxpipe.fn.connected_components(d), args.runs, cp)
            g = voxpipe.fn.connected_components(d)
            np.testing.assert_array_equal(cp.asnumpy(cp.from_dlpack(g[0])),
                                          np.asarray(got[0]))
        rows.append(r)
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        cells = []
        for k in keys:
            v = r.get(k, "")
            cells.append("%.3f ms" % v if isinstance(v, float) and k not in ("fg %",) else
                         ("%.1f" % v if isinstance(v, float) else str(v)))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

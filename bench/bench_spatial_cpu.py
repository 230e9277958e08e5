"""warp_affine on the CPU, side by side in one run: a batch of 2 volumes of 155 x 240 x 240
float32, linear, to 128^3 outputs with random rotation matrices (built as bench_spatial.py
builds them) — voxpipe (NumPy inputs, the CPU path) vs scipy.ndimage.affine_transform
(order=1, mode='grid-constant') on the same matrices, one volume after the other.

Reports medians after a warm-up, the speed-up (the spatial issue's goal: >= 10x scipy) and
the largest |difference| between the two outputs.

    python3 bench/bench_spatial_cpu.py [--reps 5] [--out FILE]
"""
import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import scipy
from scipy import ndimage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import voxpipe  # noqa: E402

B, SHAPE, OUT = 2, (155, 240, 240), (128, 128, 128)


def random_matrices(rng):
    """bench_spatial.py's matrices: output (128^3) -> input in array order, a moderate
    rotation (about 20 degrees) with a scale in [0.9, 1.1], output centre -> input centre."""
    ms = []
    cin = (np.array(SHAPE) - 1) / 2
    cout = np.full(3, 127 / 2)
    for _ in range(B):
        q = rng.standard_normal(4)
        q /= np.linalg.norm(q)
        w, x, y, z = q * np.sign(q[0])
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        A = np.eye(3) + 0.35 * (R - np.eye(3))
        A *= rng.uniform(0.9, 1.1)
        t = cin - A @ cout
        ms.append(np.hstack([A, t[:, None]]))
    return ms


def timeit(fn, reps):
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    xs = [rng.random(SHAPE, dtype=np.float32) for _ in range(B)]
    mats = random_matrices(rng)
    flat = [list(m.ravel()) for m in mats]

    def vp_warp():
        return voxpipe.fn.warp_affine(xs, matrix={"per_sample": flat}, size=list(OUT),
                                      interp="linear", border="constant")

    def sp_warp():
        return [ndimage.affine_transform(xs[i], mats[i], output_shape=OUT, order=1,
                                         mode="grid-constant", cval=0.0) for i in range(B)]

    out = [np.asarray(t) for t in vp_warp()]
    ref = sp_warp()
    assert all(o.shape == OUT and o.dtype == np.float32 for o in out), [o.shape for o in out]
    err = max(float(np.abs(o.astype(np.float64) - r).max()) for o, r in zip(out, ref))
    t_vp = timeit(vp_warp, a.reps)
    t_sp = timeit(sp_warp, a.reps)
    speed = t_sp / t_vp
    goal = 10.0
    cmd = "python3 bench/bench_spatial_cpu.py" + (f" --reps {a.reps}" if a.reps != 5 else "")
    lines = [
        f"Batch of {B} x 155x240x240 float32 -> {B} x 128^3, linear, border constant, random "
        f"rotations (bench_spatial.py's matrices); median of {a.reps} after a warm-up; "
        f"{os.cpu_count()} CPU cores ({cpu_model()}); NumPy {np.__version__}, SciPy "
        f"{scipy.__version__}, Python {platform.python_version()}.",
        "",
        f"Command: `{cmd}`",
        "",
        "| work | implementation | ms | speed-up vs scipy |",
        "|---|---|---:|---:|",
        f"| warp_affine linear -> 128^3 | voxpipe (CPU) | {t_vp:.1f} | {speed:.1f}x |",
        f"| warp_affine linear -> 128^3 | scipy.ndimage.affine_transform(order=1, "
        f"mode='grid-constant') | {t_sp:.1f} | 1.0x |",
        "",
        f"Goal >= {goal:.0f}x scipy: {'met' if speed >= goal else 'NOT met'} ({speed:.1f}x). "
        f"Outputs agree: max |voxpipe - scipy| = {err:.2e}.",
    ]
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

"""Spatial operators on the GPU, side by side in one run (H100 host): a batch of 8 volumes of
155 x 240 x 240 float32.

- warp_affine, linear, to 128^3 outputs: voxpipe vs torch affine_grid + grid_sample vs
  cupyx.scipy.ndimage.affine_transform (order=1), same matrices;
- resize, linear, to 128 x 160 x 160: voxpipe vs torch.nn.functional.interpolate (trilinear,
  align_corners=False) vs cupyx.scipy.ndimage.zoom(order=1, grid_mode=True);
- resize, cubic (B-spline with prefilter), same: voxpipe vs cupyx zoom(order=3, grid_mode=True);
- resize, linear antialiased (triangle) to 64 x 96 x 96: voxpipe (torch has no 3-D antialias).

Times: "ms" is one call with a synchronisation after it (what one eager call costs, host
overhead included); "ms queued" is the mean over 20 calls issued back to back and one
synchronisation (the device's throughput when calls are queued, as in a pipeline).

Bandwidth counts output bytes plus input bytes read once, against a measured device copy.

    python3 bench/bench_spatial.py [--out FILE]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import voxpipe  # noqa: E402

B, SHAPE = 8, (155, 240, 240)


def timeit(fn, reps=10):
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def timeit_queued(fn, n=20):
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    keep = [fn() for _ in range(n)]
    torch.cuda.synchronize()
    del keep
    return (time.perf_counter() - t0) / n * 1e3


def copy_bandwidth():
    x = torch.empty(1 << 28, dtype=torch.float32, device="cuda")
    y = torch.empty_like(x)
    ms = timeit(lambda: y.copy_(x), 20)
    return 2 * x.numel() * 4 / (ms * 1e-3)


def random_matrices(rng):
    """Output (128^3) -> input matrices in array order: a rotation about the input centre
    with a small scale, mapping the output centre to the input centre."""
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
        # keep rotations moderate (about 20 degrees) as augmentations are
        A = np.eye(3) + 0.35 * (R - np.eye(3))
        A *= rng.uniform(0.9, 1.1)
        t = cin - A @ cout
        ms.append(np.hstack([A, t[:, None]]))
    return ms


def torch_theta(M):
    """affine_grid's theta for an array-order output->input matrix: normalised (x, y, z) =
    (w, h, d) coordinates with align_corners=False."""
    P = np.eye(3)[::-1]
    A, t = P @ M[:, :3] @ P, P @ M[:, 3]
    nin = np.array(SHAPE)[::-1].astype(float)
    nout = np.array([128.0, 128.0, 128.0])
    # index i <-> normalised u: i = ((u + 1) * n - 1) / 2
    Sin, Sout = np.diag(nin / 2), np.diag(nout / 2)
    off_in, off_out = (nin - 1) / 2, (nout - 1) / 2
    At = np.linalg.inv(Sin) @ A @ Sout
    tt = np.linalg.inv(Sin) @ (A @ off_out + t - off_in)
    return np.hstack([At, tt[:, None]])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    x = torch.rand((B, 1) + SHAPE, device="cuda")
    xs = [voxpipe._as_tensor(x[i]) for i in range(B)]  # zero-copy views
    bw = copy_bandwidth()
    rows = []
    mats = random_matrices(rng)
    flat = [list(m.ravel()) for m in mats]

    def vp_warp():
        return voxpipe.fn.warp_affine(xs, matrix={"per_sample": flat}, size=[128, 128, 128],
                                      interp="linear", border="constant")

    out = vp_warp()
    ms = timeit(vp_warp)
    nbytes = B * (np.prod(SHAPE) + 128 ** 3) * 4
    rows.append(("warp_affine linear -> 128^3", "voxpipe", ms, nbytes / (ms * 1e-3) / bw))
    q = timeit_queued(vp_warp)
    rows.append(("warp_affine linear -> 128^3", "voxpipe (queued)", q, nbytes / (q * 1e-3) / bw))
    theta = torch.tensor(np.stack([torch_theta(m) for m in mats]), dtype=torch.float32,
                         device="cuda")

    def torch_warp():
        g = torch.nn.functional.affine_grid(theta, (B, 1, 128, 128, 128), align_corners=False)
        return torch.nn.functional.grid_sample(x, g, mode="bilinear", padding_mode="zeros",
                                               align_corners=False)

    ref = torch_warp()
    err = max(float((torch.from_dlpack(o) - ref[i]).abs().max()) for i, o in enumerate(out))
    rows.append(("warp_affine linear -> 128^3", "torch affine_grid + grid_sample",
                 timeit(torch_warp), None))
    try:
        import cupy as cp
        from cupyx.scipy import ndimage as cnd

        xc = [cp.from_dlpack(x[i, 0]) for i in range(B)]

        def cupy_warp():
            return [cnd.affine_transform(xc[i], cp.asarray(mats[i]), output_shape=(128,) * 3,
                                         order=1, mode="grid-constant") for i in range(B)]

        rows.append(("warp_affine linear -> 128^3", "cupyx affine_transform", timeit(cupy_warp),
                     None))
    except ImportError:
        pass

    def vp_resize():
        return voxpipe.fn.resize(xs, size=[128, 160, 160], interp="linear")

    ms = timeit(vp_resize)
    nbytes = B * (np.prod(SHAPE) + 128 * 160 * 160) * 4
    rows.append(("resize linear -> 128x160x160", "voxpipe", ms, nbytes / (ms * 1e-3) / bw))
    q = timeit_queued(vp_resize)
    rows.append(("resize linear -> 128x160x160", "voxpipe (queued)", q, nbytes / (q * 1e-3) / bw))
    rows.append(("resize linear -> 128x160x160", "torch interpolate",
                 timeit(lambda: torch.nn.functional.interpolate(x, size=(128, 160, 160),
                                                                mode="trilinear",
                                                                align_corners=False)), None))
    try:
        import cupy as cp
        from cupyx.scipy import ndimage as cnd

        xc = [cp.from_dlpack(x[i, 0]) for i in range(B)]
        z = (128 / 155, 160 / 240, 160 / 240)
        rows.append(("resize linear -> 128x160x160", "cupyx zoom(order=1)",
                     timeit(lambda: [cnd.zoom(v, z, order=1, grid_mode=True, mode="nearest")
                                     for v in xc]), None))
    except ImportError:
        pass
    def vp_cubic():
        return voxpipe.fn.resize(xs, size=[128, 160, 160], interp="cubic")

    rows.append(("resize cubic -> 128x160x160", "voxpipe", timeit(vp_cubic), None))
    rows.append(("resize cubic -> 128x160x160", "voxpipe (queued)", timeit_queued(vp_cubic),
                 None))
    try:
        import cupy as cp
        from cupyx.scipy import ndimage as cnd

        xc = [cp.from_dlpack(x[i, 0]) for i in range(B)]
        z = (128 / 155, 160 / 240, 160 / 240)
        rows.append(("resize cubic -> 128x160x160", "cupyx zoom(order=3)",
                     timeit(lambda: [cnd.zoom(v, z, order=3, grid_mode=True, mode="nearest")
                                     for v in xc], 3), None))
        got = np.asarray(voxpipe.fn.resize(xs[0], size=[128, 160, 160], interp="cubic").to("cpu"))
        ref = cp.asnumpy(cnd.zoom(xc[0], z, order=3, grid_mode=True, mode="nearest"))
        rows.append(("resize cubic -> 128x160x160", f"(voxpipe vs cupyx max diff {np.abs(got - ref).max():.1e})", 0.0, None))
    except ImportError:
        pass

    def vp_aa():
        return voxpipe.fn.resize(xs, size=[64, 96, 96], antialias="triangle")

    rows.append(("resize antialiased -> 64x96x96", "voxpipe", timeit(vp_aa), None))
    rows.append(("resize antialiased -> 64x96x96", "voxpipe (queued)", timeit_queued(vp_aa), None))
    lines = [f"Batch of {B} x 155x240x240 float32 on {torch.cuda.get_device_name()}; median of 10 "
             f"after a warm-up; device copy {bw / 1e12:.2f} TB/s (read + write). voxpipe vs torch "
             f"warp max |difference| {err:.2e}.", "",
             "| work | implementation | ms | % of copy bandwidth |", "|---|---|---:|---:|"]
    for work, impl, ms, frac in rows:
        lines.append(f"| {work} | {impl} | {ms:.3f} | {'' if frac is None else f'{100 * frac:.0f} %'} |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""NIfTI read/write speed: voxpipe against nibabel on a BraTS-like volume.

Makes (or takes, with --input) a 4 x 155 x 240 x 240 int16 .nii.gz whose
content is smooth low-frequency noise, so that it compresses about as well
as real MRI (~3:1), then times in one run (median of --repeat runs after a
warm-up):

  read:  voxpipe.load(path)
         nib.load(path).get_fdata()          (float64, what most code calls)
         np.asanyarray(nib.load(path).dataobj)  (stored dtype)
  write: voxpipe.save(path, array)  vs  nib.save(image, path)

Prints a markdown table; --out FILE also writes it there.
Usage: PYTHONPATH=python python3 bench/bench_nifti.py [--input F] [--out F]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))

import nibabel as nib  # noqa: E402
import voxpipe  # noqa: E402


def smooth_volume(shape, seed=0, noise=20.0, ax=0.47):
    """Low-frequency noise: random coarse grids upsampled by linear
    interpolation, plus a little fine noise, scaled to an MRI-like range."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    c, d, h, w = shape
    out = np.empty(shape, np.int16)
    for k in range(c):
        coarse = rng.standard_normal((d // 8 + 2, h // 8 + 2, w // 8 + 2)).astype(np.float32)
        vol = ndimage.zoom(coarse, (d / (d // 8 + 2), h / (h // 8 + 2), w / (w // 8 + 2)),
                           order=1)[:d, :h, :w]
        vol = vol * 400 + 800 + rng.normal(0, noise, (d, h, w)).astype(np.float32)
        # background outside a brain-like ellipsoid, as in skull-stripped MRI
        z, y, x = np.ogrid[:d, :h, :w]
        inside = ((z - d / 2) / (d * ax)) ** 2 + ((y - h / 2) / (h * ax)) ** 2 + (
            (x - w / 2) / (w * ax)) ** 2 <= 1
        vol[~inside] = 0
        out[k] = np.clip(vol, 0, 32767).astype(np.int16)
    return out


def timeit(fn, repeat):
    fn()  # warm-up (page cache, allocator)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", help="an existing .nii.gz to read (default: make one)")
    ap.add_argument("--shape", default="4,155,240,240", help="array shape (C,D,H,W) to make")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", help="also write the markdown table here")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench_nifti.")
    if args.input:
        path = args.input
    else:
        shape = tuple(int(s) for s in args.shape.split(","))
        arr = smooth_volume(shape)
        path = os.path.join(tmp, "brats_like.nii.gz")
        # nibabel's own writer makes the input, so the read is of a foreign file
        nib.save(nib.Nifti1Image(arr.T, np.diag([1.0, 1.0, 1.0, 1.0])), path)
    img0 = nib.load(path)
    arr = np.asanyarray(img0.dataobj).T.copy()
    raw_mb = arr.nbytes / 2**20
    gz_mb = os.path.getsize(path) / 2**20

    # correctness first: the same array as nibabel
    got = np.asarray(voxpipe.load(path))
    assert got.dtype == arr.dtype and np.array_equal(got, arr), "voxpipe and nibabel disagree"

    r = args.repeat
    t_vp = timeit(lambda: np.asarray(voxpipe.load(path)), r)
    t_fdata = timeit(lambda: nib.load(path).get_fdata(), r)
    t_dataobj = timeit(lambda: np.asanyarray(nib.load(path).dataobj), r)

    out_vp = os.path.join(tmp, "vp.nii.gz")
    out_nib = os.path.join(tmp, "nib.nii.gz")
    img = nib.Nifti1Image(arr.T, np.eye(4))
    t_save_vp = timeit(lambda: voxpipe.save(out_vp, arr), r)
    t_save_nib = timeit(lambda: nib.save(img, out_nib), r)

    rows = [
        ("read", "voxpipe.load", t_vp, 1.0),
        ("read", "nib.load + get_fdata()", t_fdata, t_fdata / t_vp),
        ("read", "nib.load + asanyarray(dataobj)", t_dataobj, t_dataobj / t_vp),
        ("write", "voxpipe.save (.nii.gz)", t_save_vp, 1.0),
        ("write", "nib.save (.nii.gz)", t_save_nib, t_save_nib / t_save_vp),
    ]
    lines = [
        f"NIfTI bench: {' x '.join(map(str, arr.shape))} {arr.dtype}, {raw_mb:.1f} MiB raw, "
        f"{gz_mb:.1f} MiB gzipped ({raw_mb / gz_mb:.2f}:1), median of {r}, "
        f"{os.cpu_count()} cores",
        "",
        "| op | implementation | time (ms) | MiB/s (raw) | voxpipe speed-up |",
        "|---|---|---:|---:|---:|",
    ]
    for op, name, t, ratio in rows:
        lines.append(f"| {op} | {name} | {t * 1e3:.1f} | {raw_mb / t:.0f} | {ratio:.2f}x |")
    lines.append("")
    lines.append(f"written sizes: voxpipe .nii.gz {os.path.getsize(out_vp) / 2**20:.1f} MiB, "
                 f"nibabel .nii.gz {os.path.getsize(out_nib) / 2**20:.1f} MiB")
    speedup = t_fdata / t_vp
    lines.append(f"read speed-up over nib.load + get_fdata: {speedup:.2f}x "
                 f"({'meets' if speedup >= 2.5 else 'MISSES'} the 2.5x requirement)")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)
    return 0 if speedup >= 2.5 else 1


if __name__ == "__main__":
    sys.exit(main())

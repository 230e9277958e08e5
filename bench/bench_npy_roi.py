#!/usr/bin/env python3
"""Region-of-interest reads from a .npy volume: voxpipe against NumPy.

Creates a 512x512x300 float32 .npy (in a temporary directory, or at --path),
then times, in one run (median of --repeat runs after a warm-up, with the
file in the page cache):

  voxpipe.load(path, roi=((s0, s1, s2), (128, 128, 128)))
  np.load(path)[s0:s0+128, s1:s1+128, s2:s2+128]              (full read, slice)
  np.load(path, mmap_mode="r")[...region...].copy()            (mapped, copy)

and reports voxpipe's counted bytes read (voxpipe.io_bytes_read) over the
region's bytes. Prints a markdown table; --out FILE also writes it.
Requirement: the ROI read reads at most 1.5x the region's bytes and is at
least 5x faster than a full read followed by slicing (exit status 1 if not).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

try:
    import voxpipe
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import voxpipe

SHAPE = (512, 512, 300)
ROI = (128, 128, 128)


def median_time(fn, repeat):
    fn()  # warm-up (page cache, allocator)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", help="the .npy to create and read (default: a temporary file)")
    ap.add_argument("--start", type=int, nargs=3, default=(200, 150, 90), metavar=("S0", "S1", "S2"))
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", help="also write the markdown table here")
    args = ap.parse_args()

    tmp = None
    path = args.path
    if not path:
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, "volume.npy")
    rng = np.random.default_rng(0)
    vol = rng.standard_normal(SHAPE, dtype=np.float32)
    np.save(path, vol)
    del vol

    s0, s1, s2 = args.start
    sl = (slice(s0, s0 + ROI[0]), slice(s1, s1 + ROI[1]), slice(s2, s2 + ROI[2]))
    region_bytes = int(np.prod(ROI)) * 4

    def vp_roi():
        return np.asarray(voxpipe.load(path, roi=((s0, s1, s2), ROI)))

    def vp_roi_mmap():
        return np.asarray(voxpipe.load(path, roi=((s0, s1, s2), ROI), mmap=True))

    def np_full():
        return np.load(path)[sl]

    def np_mmap():
        return np.load(path, mmap_mode="r")[sl].copy()

    # correctness first: all four agree
    ref = np_mmap()
    for fn in (vp_roi, vp_roi_mmap, np_full):
        if not np.array_equal(fn(), ref):
            print(f"{fn.__name__}: result differs from NumPy's", file=sys.stderr)
            return 1

    voxpipe.io_reset_bytes_read()
    vp_roi()
    header = os.path.getsize(path) - int(np.prod(SHAPE)) * 4
    counted = voxpipe.io_bytes_read()
    ratio = counted / region_bytes
    ratio_data = (counted - header) / region_bytes

    t = {
        "voxpipe.load(roi) [pread]": median_time(vp_roi, args.repeat),
        "voxpipe.load(roi, mmap=True)": median_time(vp_roi_mmap, args.repeat),
        "np.load + slice": median_time(np_full, args.repeat),
        "np.load(mmap_mode='r') + slice + copy": median_time(np_mmap, args.repeat),
    }
    base = t["np.load + slice"]
    lines = [
        f"Volume {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} float32 "
        f"({int(np.prod(SHAPE)) * 4 / 2**20:.0f} MiB), region {ROI[0]}x{ROI[1]}x{ROI[2]} at "
        f"({s0}, {s1}, {s2}) ({region_bytes / 2**20:.0f} MiB); median of {args.repeat} "
        f"after a warm-up, file in the page cache.",
        "",
        "| method | median ms | speed-up vs np.load + slice |",
        "|---|---:|---:|",
    ]
    for name, sec in t.items():
        lines.append(f"| {name} | {sec * 1e3:.2f} | {base / sec:.1f}x |")
    lines += [
        "",
        f"voxpipe bytes read: {counted} = {ratio:.4f}x the region's bytes "
        f"({ratio_data:.4f}x without the {header}-byte header).",
    ]
    speedup = base / t["voxpipe.load(roi) [pread]"]
    ok = ratio <= 1.5 and speedup >= 5
    lines.append(
        f"Requirement (bytes <= 1.5x region, >= 5x faster than np.load + slice): "
        f"{'met' if ok else 'NOT met'} ({ratio:.3f}x bytes, {speedup:.1f}x faster).")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    if tmp:
        tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

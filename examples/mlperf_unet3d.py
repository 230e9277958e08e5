"""MLPerf UNet3D's KiTS19 training chain, the same graph as mlperf_unet3d.json: decoded
cases cached in GPU memory, the biased crop on the GPU (random_object_bbox: classes [1, 2],
k_largest 2, foreground_prob 0.4; a 128^3 window holding the box, else a uniform window),
flip each axis with p 1/3, cast (f32, u8), brightness x U(0.7, 1.3) with p 0.1, gaussian
noise sigma U(0, 0.1) with p 0.1.

    python3 examples/mlperf_unet3d.py demo-out/data/kits [--cpu] [--iterations 100]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import voxpipe  # noqa: E402


def build(dataset_json, batch_size=2, device_id=0, seed=42, num_threads=0, patch=128):
    dev = "cpu" if device_id is None else "gpu"
    pipe = voxpipe.Pipeline(batch_size=batch_size, num_threads=num_threads, device_id=device_id,
                            seed=seed)
    with pipe:
        img, lbl = voxpipe.fn.readers.dataset(dataset_json, shuffle=True, pad_last_batch=True,
                                              cache_bytes=8_000_000_000,
                                              cache_device="cpu" if device_id is None else "gpu")
        box, _ = voxpipe.fn.random_object_bbox(lbl, classes=[1, 2], k_largest=2,
                                               foreground_prob=0.4, format="start_end",
                                               cache_bytes=64 << 20, device=dev)
        anchor, _, _ = voxpipe.fn.random_crop_window(lbl, mode="roi", roi=box,
                                                     crop_shape=[patch] * 3, device=dev)
        crop = dict(anchor=anchor, shape=[patch] * 3, out_of_bounds_policy="pad", device=dev)
        img = voxpipe.fn.slice(img, **crop)
        lbl = voxpipe.fn.slice(lbl, **crop)
        fd, fh, fw = (voxpipe.fn.coin_flip(probability=0.3333333) for _ in range(3))
        flips = dict(depthwise=fd, vertical=fh, horizontal=fw, device=dev)
        img = voxpipe.fn.flip(img, **flips)
        lbl = voxpipe.fn.flip(lbl, **flips)
        img = voxpipe.fn.cast(img, dtype="float32", device=dev)
        lbl = voxpipe.fn.cast(lbl, dtype="uint8", device=dev)
        bright = voxpipe.fn.uniform(range=[0.7, 1.3])
        img = voxpipe.fn.brightness(img, factor=bright, p=0.1, device=dev)
        sd = voxpipe.fn.uniform(range=[0, 0.1])
        img = voxpipe.fn.gaussian_noise(img, stddev=sd, p=0.1, device=dev)
        pipe.set_outputs(img, lbl)
    pipe.build()
    return pipe


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="folder with dataset.json (voxpipe synth --kind kits --format npy)")
    ap.add_argument("--cpu", action="store_true", help="run every node on the CPU")
    ap.add_argument("--iterations", type=int, default=100)
    a = ap.parse_args()
    use_gpu = not a.cpu and voxpipe.cuda_device_count() > 0
    pipe = build(os.path.join(a.data, "dataset.json"), device_id=0 if use_gpu else None)
    t0 = time.perf_counter()
    for i in range(a.iterations):
        images, labels = pipe.run()
        if i == 0:
            t1 = time.perf_counter()
    t2 = time.perf_counter()
    n = (a.iterations - 1) * pipe.batch_size
    print(f"{images[0].shape} {images[0].dtype} on {images[0].device}; "
          f"{n / (t2 - t1):.1f} patches/s after the first batch ({t1 - t0:.2f} s)")


if __name__ == "__main__":
    main()

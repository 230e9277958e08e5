"""nnU-Net's BraTS training chain (NVIDIA's DALI port, as far as voxpipe's operators go
today), the same graph as nnunet_brats.json: random 128^3 crop read by the reader, flips with
p 0.5 per axis, gaussian noise sigma U(0, 0.33) with p 0.15, fed to PyTorch when it is
installed. Biased crop, zoom, blur, brightness and contrast join as their operators land.

    python3 examples/nnunet_brats.py demo-out/data/brats [--cpu] [--iterations 100]
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
                                              random_crop=[patch] * 3)
        fd, fh, fw = (voxpipe.fn.coin_flip(probability=0.5) for _ in range(3))
        flips = dict(depthwise=fd, vertical=fh, horizontal=fw, device=dev)
        img = voxpipe.fn.flip(img, **flips)
        lbl = voxpipe.fn.flip(lbl, **flips)
        sd = voxpipe.fn.uniform(range=[0, 0.33])
        img = voxpipe.fn.gaussian_noise(img, stddev=sd, p=0.15, device=dev)
        pipe.set_outputs(img, lbl)
    pipe.build()
    return pipe


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="folder with dataset.json (voxpipe synth --kind brats --format npy)")
    ap.add_argument("--cpu", action="store_true", help="run every node on the CPU")
    ap.add_argument("--iterations", type=int, default=100)
    a = ap.parse_args()
    use_gpu = not a.cpu and voxpipe.cuda_device_count() > 0
    pipe = build(os.path.join(a.data, "dataset.json"), device_id=0 if use_gpu else None)
    try:
        import voxpipe.torch as vt

        batches = (( b["image"], b["label"]) for _ in iter(int, 1)
                   for b in vt.Loader(pipe, ["image", "label"]))
    except ImportError:  # no torch: voxpipe Tensors
        batches = (pipe.run() for _ in iter(int, 1))
    t0 = time.perf_counter()
    for i in range(a.iterations):
        x, y = next(batches)
        if i == 0:
            t1 = time.perf_counter()
    t2 = time.perf_counter()
    n = (a.iterations - 1) * pipe.batch_size
    print(f"image batch {tuple(x.shape) if hasattr(x, 'shape') else len(x)}; "
          f"{n / (t2 - t1):.1f} patches/s after the first batch ({t1 - t0:.2f} s)")


if __name__ == "__main__":
    main()

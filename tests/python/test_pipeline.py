"""voxpipe.Pipeline, voxpipe.fn and voxpipe.torch.Loader against eager calls and NumPy."""
import json
import os
import subprocess

import numpy as np
import pytest

import voxpipe

CROP = (16, 20, 24)


@pytest.fixture
def dataset(tmp_path, rng):
    """A small npy dataset of 5 cases with different shapes, image (1, D, H, W) f32
    and label (D, H, W) u8, plus a dataset.json."""
    cases = []
    entries = []
    for k in range(5):
        shape = tuple(int(s) for s in rng.integers(25, 34, size=3))
        img = rng.standard_normal((1,) + shape).astype(np.float32)
        img[0, 0, 0, 0] = k  # the case's id, to follow it through the pipeline
        lbl = rng.integers(0, 3, size=shape, dtype=np.uint8)
        np.save(tmp_path / f"case_{k}_x.npy", img)
        np.save(tmp_path / f"case_{k}_y.npy", lbl)
        entries.append({"image": f"./case_{k}_x.npy", "label": f"./case_{k}_y.npy"})
        cases.append((img, lbl))
    (tmp_path / "dataset.json").write_text(json.dumps({"training": entries}))
    return tmp_path, cases


def build(ds, batch_size=2, num_threads=2, prefetch=2, seed=7, shuffle=True, device_id=None,
          dev="cpu"):
    root, _ = ds
    pipe = voxpipe.Pipeline(batch_size=batch_size, num_threads=num_threads, device_id=device_id,
                            seed=seed, prefetch_queue_depth=prefetch)
    with pipe:
        img, lbl = voxpipe.fn.readers.dataset(root / "dataset.json", shuffle=shuffle)
        pos = voxpipe.fn.uniform(range=[0, 1], shape=[3])
        img = voxpipe.fn.slice(img, rel_anchor=pos, shape=list(CROP), device=dev)
        lbl = voxpipe.fn.slice(lbl, rel_anchor=pos, shape=list(CROP), device=dev)
        flip = voxpipe.fn.coin_flip(probability=0.5)
        img = voxpipe.fn.flip(img, horizontal=flip, depthwise=flip, device=dev)
        lbl = voxpipe.fn.flip(lbl, horizontal=flip, depthwise=flip, device=dev)
        img = voxpipe.fn.gaussian_noise(img, stddev=0.1, p=0.5, device=dev)
        img = voxpipe.fn.cast(img, dtype="float16", device=dev)
        pipe.set_outputs(img, lbl)
    pipe.build()
    return pipe


def batches(pipe, n):
    out = []
    for _ in range(n):
        x, y = pipe.run()
        out.append(([np.asarray(t.cpu() if t.device.startswith("gpu") else t).copy() for t in x],
                    [np.asarray(t.cpu() if t.device.startswith("gpu") else t).copy() for t in y]))
    return out


def test_outputs_follow_the_graph(dataset):
    """Every sample is a CROP-sized window of its case (with the same window and
    flip for image and label), cast to float16: checked against NumPy."""
    _, cases = dataset
    pipe = build(dataset, shuffle=False, seed=3)
    assert pipe.epoch_size == 5 and len(pipe) == 3
    seen = 0
    for xs, ys in batches(pipe, 6):
        for x, y in zip(xs, ys):
            assert x.shape == (1,) + CROP and x.dtype == np.float16
            assert y.shape == CROP and y.dtype == np.uint8
            # find the label window inside its case: the flips are D and W together
            found = False
            for k, (img, lbl) in enumerate(cases):
                D, H, W = lbl.shape
                for fl in (False, True):
                    yy = y[::-1, :, ::-1] if fl else y
                    for d in range(D - CROP[0] + 1):
                        for h in range(H - CROP[1] + 1):
                            for w in range(W - CROP[2] + 1):
                                win = lbl[d:d + CROP[0], h:h + CROP[1], w:w + CROP[2]]
                                if np.array_equal(win, yy):
                                    ref = img[:, d:d + CROP[0], h:h + CROP[1], w:w + CROP[2]]
                                    xx = x[:, ::-1, :, ::-1] if fl else x
                                    diff = np.abs(xx.astype(np.float32) - ref)
                                    # noise sigma 0.1 (or none) plus float16 rounding
                                    assert diff.max() < 0.1 * 6 + 1e-2
                                    found = True
                                    break
                            if found:
                                break
                        if found:
                            break
                    if found:
                        break
                if found:
                    break
            assert found, "an output window matches no case"
            seen += 1
    assert seen == 12


def test_same_seed_same_bytes_any_threads_and_prefetch(dataset):
    ref = batches(build(dataset, num_threads=1, prefetch=1), 4)
    for threads, prefetch in ((2, 2), (4, 3)):
        got = batches(build(dataset, num_threads=threads, prefetch=prefetch), 4)
        for (xa, ya), (xb, yb) in zip(ref, got):
            for a, b in zip(xa + ya, xb + yb):
                assert a.tobytes() == b.tobytes()
    other = batches(build(dataset, seed=8), 4)
    assert any(a.tobytes() != b.tobytes()
               for (xa, _), (xb, _) in zip(ref, other) for a, b in zip(xa, xb))


def test_state_resumes_mid_epoch(dataset):
    pipe = build(dataset)
    batches(pipe, 3)
    state = pipe.state_dict()
    expect = batches(pipe, 3)
    again = build(dataset)
    again.load_state_dict(state)
    got = batches(again, 3)
    for (xa, ya), (xb, yb) in zip(expect, got):
        for a, b in zip(xa + ya, xb + yb):
            assert a.tobytes() == b.tobytes()


def test_eager_calls_match_numpy(rng):
    a = rng.standard_normal((2, 5, 6, 7)).astype(np.float32)
    f = voxpipe.fn.flip(a, horizontal=True, vertical=True, depthwise=False)
    np.testing.assert_array_equal(np.asarray(f), a[:, :, ::-1, ::-1])
    s = voxpipe.fn.slice(a, anchor=[1, -1, 2], shape=[3, 4, 9], out_of_bounds_policy="pad",
                         fill_value=5)
    ref = np.full((2, 3, 4, 9), 5, np.float32)
    ref[:, :, 1:4, 0:5] = a[:, 1:4, 0:3, 2:7]
    np.testing.assert_array_equal(np.asarray(s), ref)
    c = voxpipe.fn.cast(np.array([1.5, 2.5, -7.2, 300, np.nan], np.float32), dtype="uint8")
    np.testing.assert_array_equal(np.asarray(c), [2, 2, 0, 255, 0])
    # a batch: a list in, a list out
    outs = voxpipe.fn.flip([a, a[:, :3]], horizontal=True)
    assert [o.shape for o in outs] == [a.shape, a[:, :3].shape]
    assert "Flips" in voxpipe.fn.flip.__doc__ or "flip" in voxpipe.fn.flip.__doc__


def test_graph_errors_name_the_problem(dataset):
    root, _ = dataset
    pipe = voxpipe.Pipeline(batch_size=1, device_id=None)
    with pipe:
        img, lbl = voxpipe.fn.readers.dataset(root / "dataset.json")
        with pytest.raises(ValueError, match="shape"):
            voxpipe.fn.slice(img, anchor=[0, 0, 0], shape=[-1, 2, 2])
        with pytest.raises(voxpipe.VoxpipeError, match="gpu|device"):
            voxpipe.fn.flip(img, device="gpu")
            pipe.set_outputs(img)
            pipe.build()
    with pytest.raises(AttributeError, match="noise"):
        voxpipe.fn.noise  # noqa: B018


def test_bad_file_mid_epoch_names_it(dataset):
    root, _ = dataset
    (root / "case_3_x.npy").write_bytes(b"\x93NUMPY\x01\x00broken")
    pipe = voxpipe.Pipeline(batch_size=1, num_threads=2, device_id=None)
    with pipe:
        img, lbl = voxpipe.fn.readers.dataset(root / "dataset.json")
        pipe.set_outputs(img)
    with pytest.raises(Exception, match="case_3_x.npy"):
        for _ in range(5):
            pipe.run()


def test_pipeline_file_equals_python_graph(dataset, tmp_path):
    root, _ = dataset
    spec = {
        "pipeline": {"batch_size": 2, "num_threads": 2, "seed": 11},
        "reader": {"dataset_json": str(root / "dataset.json"), "shuffle": True,
                   "outputs": ["image", "label"]},
        "nodes": [
            {"op": "coin_flip", "args": {"probability": 0.5}, "outputs": ["f"]},
            {"op": "flip", "inputs": ["image"], "args": {"vertical": {"node": "f"}},
             "outputs": ["img_f"]},
        ],
        "outputs": ["img_f", "label"],
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(spec))
    a = voxpipe.Pipeline.from_file(path, device=-1)
    b = voxpipe.Pipeline(batch_size=2, num_threads=2, seed=11, device_id=None)
    with b:
        img, lbl = voxpipe.fn.readers.dataset(root / "dataset.json", shuffle=True)
        f = voxpipe.fn.coin_flip(probability=0.5)
        img = voxpipe.fn.flip(img, vertical=f)
        b.set_outputs(img, lbl)
    for _ in range(3):
        (xa, ya), (xb, yb) = a.run(), b.run()
        for s, t in zip(list(xa) + list(ya), list(xb) + list(yb)):
            assert np.asarray(s).tobytes() == np.asarray(t).tobytes()


def test_cli_run(dataset, tmp_path, cli):
    root, _ = dataset
    spec = {
        "pipeline": {"batch_size": 2, "seed": 1},
        "reader": {"dataset_json": str(root / "dataset.json"), "outputs": ["image", "label"]},
        "nodes": [{"op": "slice", "inputs": ["image"],
                   "args": {"anchor": [0, 0, 0], "shape": [16, 16, 16]}, "outputs": ["crop"]},
                  {"op": "slice", "inputs": ["label"],
                   "args": {"anchor": [0, 0, 0], "shape": [16, 16, 16]}, "outputs": ["lcrop"]}],
        "outputs": ["crop", "lcrop"],
    }
    path = tmp_path / "run.json"
    path.write_text(json.dumps(spec))
    r = subprocess.run([cli, "run", str(path), "--iterations", "5", "--device", "cpu",
                        "--save", str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "samples/s" in r.stdout
    assert (tmp_path / "out" / "output0_sample0.nii.gz").exists()
    assert (tmp_path / "out" / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # one PNG per stage, the label stage of the same depth overlaid
    r = subprocess.run([cli, "preview", "--pipeline", str(path), "--out", str(tmp_path / "st")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    pngs = sorted(os.listdir(tmp_path / "st"))
    assert pngs == ["stage00_image.png", "stage01_crop.png"]
    assert "crop + lcrop" in r.stdout
    for f in pngs:
        assert (tmp_path / "st" / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    spec["nodes"][0]["args"]["shape"] = [16, -16, 16]
    path.write_text(json.dumps(spec))
    r = subprocess.run([cli, "run", str(path)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "nodes[0].args.shape" in r.stderr
    r = subprocess.run([cli, "run", str(path), "--iterations", "x"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "--iterations" in r.stderr


def _torch():
    try:
        import torch
    except ImportError:
        pytest.skip("torch not installed")
    return torch


def test_torch_loader_cpu(dataset):
    torch = _torch()
    import voxpipe.torch as vt

    pipe = build(dataset, batch_size=2)
    loader = vt.Loader(pipe, output_map=["image", "label"])
    assert len(loader) == 3
    n = 0
    for batch in loader:
        assert batch["image"].shape == (2, 1) + CROP
        assert batch["image"].dtype == torch.float16
        assert batch["label"].shape == (2,) + CROP
        n += 1
    assert n == 3


@pytest.mark.skipif(voxpipe.cuda_device_count() == 0, reason="needs a GPU")
def test_gpu_pipeline_equals_cpu_and_feeds_torch_without_copy(dataset):
    torch = _torch()
    import voxpipe.torch as vt

    cpu = batches(build(dataset, seed=5), 4)
    gpu_pipe = build(dataset, seed=5, device_id=0, dev="gpu")
    gpu = batches(gpu_pipe, 4)
    for (xa, ya), (xb, yb) in zip(cpu, gpu):
        for a, b in zip(ya, yb):
            assert a.tobytes() == b.tobytes()
        for a, b in zip(xa, xb):
            np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), rtol=1e-3,
                                       atol=1e-3)
    loader = vt.Loader(build(dataset, seed=5, device_id=0, dev="gpu"), ["image", "label"])
    for batch in loader:
        x = batch["image"]
        assert x.is_cuda and x.shape == (2, 1) + CROP
        # CROP float16 samples are 15360 bytes (60 x 256): back to back, one tensor, no copy
        assert x.is_contiguous()
        break


def _find_window(case_lbl, y, crop):
    """The position of label window y in case_lbl (zero-padded at the far ends), or None."""
    D, H, W = case_lbl.shape
    pad = np.zeros((D + 2 * crop[0], H + 2 * crop[1], W + 2 * crop[2]), case_lbl.dtype)
    pad[crop[0]:crop[0] + D, crop[1]:crop[1] + H, crop[2]:crop[2] + W] = case_lbl
    for d in range(D + crop[0] + 1):
        for h in range(H + crop[1] + 1):
            for w in range(W + crop[2] + 1):
                if np.array_equal(pad[d:d + crop[0], h:h + crop[1], w:w + crop[2]], y):
                    return d - crop[0], h - crop[1], w - crop[2]
    return None


def test_reader_random_crop_reads_matching_windows(dataset):
    """random_crop: each sample is a window of its case at one position for image and
    label (padded with 0 outside), positions vary, and the same seed repeats them."""
    root, cases = dataset
    crop = (16, 30, 12)  # H = 30 is larger than some cases: padded windows too

    def make(seed):
        pipe = voxpipe.Pipeline(batch_size=3, num_threads=2, device_id=None, seed=seed)
        with pipe:
            img, lbl = voxpipe.fn.readers.dataset(root / "dataset.json", random_crop=crop)
            pipe.set_outputs(img, lbl)
        return pipe

    pipe = make(4)
    positions = set()
    for it in range(4):
        xs, ys = pipe.run()
        for k, (x, y) in enumerate(zip(xs, ys)):
            x, y = np.asarray(x), np.asarray(y)
            assert x.shape == (1,) + crop and y.shape == crop
            case = (it * 3 + k) % 5  # no shuffle: cases in order
            img, lbl = cases[case]
            pos = _find_window(lbl, y, crop)
            assert pos is not None
            d, h, w = pos
            ref = np.zeros((1,) + crop, np.float32)
            D, H, W = lbl.shape
            d0, h0, w0 = max(d, 0), max(h, 0), max(w, 0)
            d1, h1, w1 = min(d + crop[0], D), min(h + crop[1], H), min(w + crop[2], W)
            ref[:, d0 - d:d1 - d, h0 - h:h1 - h, w0 - w:w1 - w] = img[:, d0:d1, h0:h1, w0:w1]
            np.testing.assert_array_equal(x, ref)
            positions.add(pos)
    assert len(positions) > 6
    a = [np.asarray(t).tobytes() for t in make(4).run()[0]]
    b = [np.asarray(t).tobytes() for t in make(4).run()[0]]
    c = [np.asarray(t).tobytes() for t in make(5).run()[0]]
    assert a == b and a != c


@pytest.mark.parametrize("crop", [None, (16, 30, 12)])
def test_reader_cache_gives_the_same_bytes(dataset, crop):
    """With a cache the batches are byte-identical to reading the files; later epochs
    hit the cache; a small budget holds at most that many bytes."""
    root, cases = dataset

    def make(cache_bytes):
        pipe = voxpipe.Pipeline(batch_size=2, num_threads=2, device_id=None, seed=9)
        with pipe:
            img, lbl = voxpipe.fn.readers.dataset(root / "dataset.json", shuffle=True,
                                                  random_crop=crop, cache_bytes=cache_bytes)
            flip = voxpipe.fn.coin_flip(probability=0.5)
            img = voxpipe.fn.flip(img, vertical=flip)
            pipe.set_outputs(img, lbl)
        return pipe

    plain, cached = make(0), make(1 << 30)
    for _ in range(8):  # 3 epochs of 5 cases
        for a, b in zip(plain.run(), cached.run()):
            for s, t in zip(a, b):
                assert np.asarray(s).tobytes() == np.asarray(t).tobytes()
    st = cached.cache_stats()
    case_bytes = sum(i.nbytes + l.nbytes for i, l in cases)
    assert st["entries"] == 5 and st["bytes"] == case_bytes
    # a case in a batch twice (an epoch ends mid-batch) may be read by two workers at once:
    # two misses, one entry; the producer may also have read ahead
    assert st["misses"] >= 5 and st["hits"] + st["misses"] >= 16 and st["hits"] >= 8
    assert plain.cache_stats() == {"bytes": 0, "entries": 0, "hits": 0, "misses": 0}
    budget = case_bytes // 2
    small = make(budget)
    for _ in range(8):
        small.run()
    st = small.cache_stats()
    assert 0 < st["bytes"] <= budget and st["entries"] < 5


def _cropped(root, device_id, dev, cache_device):
    pipe = voxpipe.Pipeline(batch_size=2, num_threads=2, device_id=device_id, seed=13)
    with pipe:
        img, lbl = voxpipe.fn.readers.dataset(root / "dataset.json", shuffle=True,
                                              cache_bytes=1 << 30, cache_device=cache_device)
        pos = voxpipe.fn.uniform(range=[0, 1], shape=[3])
        win = dict(rel_anchor=pos, shape=list(CROP), out_of_bounds_policy="pad", device=dev)
        img, lbl = voxpipe.fn.slice(img, **win), voxpipe.fn.slice(lbl, **win)
        flip = voxpipe.fn.coin_flip(probability=0.5)
        img = voxpipe.fn.flip(img, horizontal=flip, device=dev)
        pipe.set_outputs(img, lbl)
    pipe.build()
    return pipe


def test_gpu_cache_needs_a_gpu_and_whole_volumes(dataset):
    root, _ = dataset
    pipe = voxpipe.Pipeline(batch_size=1, device_id=None)
    with pipe:
        img, lbl = voxpipe.fn.readers.dataset(root / "dataset.json", cache_bytes=1 << 20,
                                              cache_device="gpu", random_crop=[8, 8, 8])
        pipe.set_outputs(img)
    with pytest.raises(ValueError, match="GPU cache holds whole volumes"):
        pipe.build()
    with pytest.raises(ValueError, match="cache_device"):
        with voxpipe.Pipeline(batch_size=1, device_id=None):
            voxpipe.fn.readers.dataset(root / "dataset.json", cache_bytes=1, cache_device="tpu")


@pytest.mark.skipif(voxpipe.cuda_device_count() == 0, reason="needs a GPU")
def test_gpu_cache_equals_the_cpu_pipeline(dataset):
    root, cases = dataset
    cpu = _cropped(root, None, "cpu", "cpu")
    gpu = _cropped(root, 0, "gpu", "gpu")
    for _ in range(8):
        for a, b in zip(cpu.run(), gpu.run()):
            for s, t in zip(a, b):
                assert t.device == "gpu:0"
                assert np.asarray(s).tobytes() == np.asarray(t.cpu()).tobytes()
    st = gpu.cache_stats()
    assert st["entries"] == 5 and st["misses"] >= 5 and st["hits"] + st["misses"] >= 16
    assert st["bytes"] == sum(i.nbytes + l.nbytes for i, l in cases)

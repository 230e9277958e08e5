"""Pointwise fusion in pipelines: a chain of pointwise nodes (cast,
brightness, contrast with its statistics, gaussian noise with per-sample
sigma, normalize, cast to float16) gives the same bytes fused (the
default: one pass over the voxels) as run node by node
(fuse_pointwise=False), on the CPU, and on the GPU when there is one; a
node whose intermediate output is also a pipeline output, or read by
another node, breaks the chain without changing any result."""
import json

import numpy as np
import pytest

import voxpipe


@pytest.fixture
def dataset(tmp_path, rng):
    entries = []
    for k in range(4):
        shape = tuple(int(s) for s in rng.integers(12, 20, size=3))
        img = (rng.standard_normal((2,) + shape) * 50 + 100).astype(np.float32)
        img[:, :2] = 0  # zeros for normalize(nonzero)
        np.save(tmp_path / f"c{k}_x.npy", img)
        np.save(tmp_path / f"c{k}_y.npy", (img[0] > 100).astype(np.uint8))
        entries.append({"image": f"./c{k}_x.npy", "label": f"./c{k}_y.npy"})
    (tmp_path / "dataset.json").write_text(json.dumps({"training": entries}))
    return tmp_path


def chain_pipeline(root, fuse, dev, device_id, extra_output=False):
    pipe = voxpipe.Pipeline(batch_size=2, num_threads=2, device_id=device_id, seed=11,
                            fuse_pointwise=fuse)
    with pipe:
        img, lbl = voxpipe.fn.readers.dataset(root / "dataset.json", shuffle=True)
        b = voxpipe.fn.uniform(range=[0.7, 1.3])
        c = voxpipe.fn.uniform(range=[0.65, 1.5])
        s = voxpipe.fn.uniform(range=[0.0, 20.0])
        x = voxpipe.fn.cast(img, dtype="float32", device=dev)
        x = voxpipe.fn.brightness(x, factor=b, p=0.5, device=dev)
        mid = voxpipe.fn.contrast(x, factor=c, p=0.5, device=dev)
        x = voxpipe.fn.gaussian_noise(mid, stddev=s, p=0.5, device=dev)
        x = voxpipe.fn.normalize(x, nonzero=True, device=dev)
        x = voxpipe.fn.cast(x, dtype="float16", device=dev)
        outs = [x, lbl] + ([mid] if extra_output else [])
        pipe.set_outputs(*outs)
    pipe.build()
    return pipe


def batches(pipe, n):
    got = []
    for _ in range(n):
        out = pipe.run()
        got.append([[np.asarray(t.to("cpu") if hasattr(t, "to") else t) for t in o] for o in out])
    return got


def run_both(root, dev, device_id, extra_output=False):
    a = batches(chain_pipeline(root, True, dev, device_id, extra_output), 4)
    b = batches(chain_pipeline(root, False, dev, device_id, extra_output), 4)
    changed = 0
    for ba, bb in zip(a, b):
        for oa, ob in zip(ba, bb):
            for ta, tb in zip(oa, ob):
                assert ta.dtype == tb.dtype and ta.shape == tb.shape
                np.testing.assert_array_equal(ta.view(np.uint8), tb.view(np.uint8))
        changed += int(np.any(ba[0][0] != 0))
    assert changed > 0


def test_fused_equals_unfused_cpu(dataset):
    run_both(dataset, "cpu", None)


def test_chain_broken_by_an_extra_reader(dataset):
    run_both(dataset, "cpu", None, extra_output=True)


def test_fused_equals_unfused_gpu(dataset):
    if voxpipe._voxpipe.cuda_device_count() == 0:
        pytest.skip("no GPU")
    run_both(dataset, "gpu", 0)


def test_eager_chain_equals_calls_one_by_one(rng):
    xs = [(rng.standard_normal(s) * 40 + 90).astype(np.float32)
          for s in [(2, 9, 10, 11), (2, 5, 17, 6), (2, 12, 3, 8)]]
    ops = [("brightness", {"factor": {"per_sample": [1.1, 0.8, 1.25]}, "p": 0.7}),
           ("contrast", {"factor": 1.3, "p": 0.7}),
           ("gaussian_noise", {"stddev": {"per_sample": [3.0, 0.5, 9.0]}, "p": 0.7}),
           ("gamma", {"gamma": 1.4}),
           ("cast", {"dtype": "int16"})]
    seed = int(rng.integers(1, 1 << 40))
    fused = voxpipe.fn.chain(xs, ops, seed=seed)
    one = xs
    for k, (name, kw) in enumerate(ops):
        one = getattr(voxpipe.fn, name)(one, seed=seed + k, **kw)
    for a, b in zip(fused, one):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == np.int16 and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    single = voxpipe.fn_chain(xs[0], [("brightness", {"factor": 1.1, "p": 0.7}), ops[1]],
                              seed=seed)
    np.testing.assert_array_equal(
        np.asarray(single),
        np.asarray(voxpipe.fn.contrast(voxpipe.fn.brightness(xs[0], seed=seed, factor=1.1, p=0.7),
                                       seed=seed + 1, factor=1.3, p=0.7)))


def test_chain_refuses_operators_of_two_inputs():
    with pytest.raises(ValueError, match="normalize_masked has 2 inputs"):
        voxpipe.fn.chain(np.zeros((4, 4, 4), np.float32), [("normalize_masked", {})])


def _host(t):
    return np.asarray(t.cpu() if isinstance(t, voxpipe.Tensor) else t)


def _one_by_one(xs, ops, seed, dev):
    out = xs
    for k, (name, kw) in enumerate(ops):
        out = getattr(voxpipe.fn, name)(out, seed=seed + k, device=dev, **kw)
    return out


@pytest.mark.parametrize("dev", ["cpu", "gpu"])
def test_chain_with_blur_equals_calls_one_by_one(rng, dev):
    """nnU-Net's intensity order with a stencil inside: noise, blur, brightness, contrast,
    cast. Over many seeds blur is drawn for all, some or none of the samples; where none,
    the chain leaves blur out and fuses the rest into one pass: the bytes must not change."""
    if dev == "gpu" and voxpipe._voxpipe.cuda_device_count() == 0:
        pytest.skip("no GPU")
    xs = [(rng.standard_normal(s) * 40 + 90).astype(np.float32)
          for s in [(2, 9, 10, 11), (2, 5, 17, 6)]]
    if dev == "gpu":
        xs = [voxpipe._as_tensor(x).to("gpu") for x in xs]
    ops = [("gaussian_noise", {"stddev": {"per_sample": [3.0, 0.5]}, "p": 0.5}),
           ("gaussian_blur", {"sigma": {"per_sample": [[1.0], [0.5, 1.5, 0.8]]}, "p": 0.4}),
           ("brightness", {"factor": {"per_sample": [1.1, 0.8]}, "p": 0.5}),
           ("contrast", {"factor": 1.3, "p": 0.5}),
           ("cast", {"dtype": "float16"})]
    no_blur = ops[:1] + ops[2:]
    drawn = set()
    for seed in range(int(rng.integers(1, 1 << 30)), 0, -7919):
        fused = voxpipe.fn.chain(xs, ops, seed=seed)
        one = _one_by_one(xs, ops, seed, dev)
        blurred = _one_by_one(xs, ops[:2], seed, dev)
        noised = _one_by_one(xs, ops[:1], seed, dev)
        n = sum(not np.array_equal(_host(b), _host(m)) for b, m in zip(blurred, noised))
        drawn.add(n)
        for a, b in zip(fused, one):
            a, b = _host(a), _host(b)
            assert a.dtype == np.float16 and a.shape == b.shape
            assert a.tobytes() == b.tobytes(), (seed, n)
        if drawn >= {0, 1, 2} and len(drawn) and seed % 3 == 0:
            break
    assert drawn >= {0, 1}, drawn
    # with blur at p 0 the chain is the pointwise run alone: the same bytes as without blur
    # (keys: blur keeps its place, so the later operators draw as in the 5-op chain)
    never = [ops[0], ("gaussian_blur", {"sigma": [1.0], "p": 0.0})] + ops[2:]
    a = voxpipe.fn.chain(xs, never, seed=5)
    b = _one_by_one(xs, never, 5, dev)
    for u, v in zip(a, b):
        assert _host(u).tobytes() == _host(v).tobytes()
    assert len(no_blur) == 4


@pytest.mark.parametrize("dev", ["cpu", "gpu"])
def test_chain_passes_untouched_samples_through(rng, dev):
    """A segment that p leaves alone for a sample hands that sample's input on instead of a
    copy (noise drawn for no sample: its pass is skipped; blur drawn for one: the other is
    not copied). The bytes are those of the calls one by one, the inputs stay as they were,
    and the chain's outputs are new tensors even where every operator passed a sample."""
    if dev == "gpu" and voxpipe._voxpipe.cuda_device_count() == 0:
        pytest.skip("no GPU")
    host = [(rng.standard_normal(s) * 40 + 90).astype(np.float32)
            for s in [(2, 9, 10, 11), (1, 5, 17, 6), (2, 7, 7, 7)]]
    keep = [h.copy() for h in host]
    xs = [voxpipe._as_tensor(x).to("gpu") for x in host] if dev == "gpu" else host
    ps = lambda v: {"per_sample": v}  # noqa: E731
    cases = [
        [("gaussian_noise", {"stddev": 2.0, "p": ps([0, 0, 0])}),
         ("gaussian_blur", {"sigma": [0.9], "p": ps([1, 0, 1])}),
         ("brightness", {"factor": 1.2, "p": ps([0, 1, 0])}),
         ("cast", {"dtype": "float16"})],
        [("gaussian_noise", {"stddev": 2.0, "p": ps([1, 0, 0])}),
         ("gaussian_blur", {"sigma": [0.7], "p": ps([0, 1, 0])}),
         ("contrast", {"factor": 1.3, "p": ps([0, 0, 1])})],
        # a cast before blur changes the dtype: nothing may pass through there
        [("cast", {"dtype": "float16"}),
         ("gaussian_blur", {"sigma": [0.8], "p": ps([0, 1, 0])}),
         ("brightness", {"factor": 0.9, "p": ps([1, 0, 0])})],
        # the chain ends in a blur that passes samples 0 and 2: still new outputs
        [("brightness", {"factor": 1.1, "p": ps([0, 0, 1])}),
         ("gaussian_blur", {"sigma": [0.6], "p": ps([0, 1, 0])})],
    ]
    for ops in cases:
        fused = voxpipe.fn.chain(xs, ops, seed=11)
        one = _one_by_one(xs, ops, 11, dev)
        for x, a, b in zip(xs, fused, one):
            assert a is not x and a._h != getattr(x, "_h", None)
            assert _host(a).tobytes() == _host(b).tobytes(), ops
        for x, k in zip(xs, keep):
            assert _host(x).tobytes() == k.tobytes()
    # the last chain's first sample passed every operator: its output equals its input
    # and is a copy (writing to the input does not show in it)
    out = voxpipe.fn.chain(host, cases[3], seed=11)
    assert np.asarray(out[0]).tobytes() == keep[0].tobytes()
    host[0][...] = 0
    assert np.asarray(out[0]).tobytes() == keep[0].tobytes()


def blur_pipeline(root, dev, device_id, blur_is_output):
    pipe = voxpipe.Pipeline(batch_size=2, num_threads=2, device_id=device_id, seed=3)
    with pipe:
        img, lbl = voxpipe.fn.readers.dataset(root / "dataset.json", shuffle=True)
        x = voxpipe.fn.cast(img, dtype="float32", device=dev)
        blurred = voxpipe.fn.gaussian_blur(x, sigma=[0.8], p=0.5, device=dev)
        y = voxpipe.fn.brightness(blurred, factor=1.25, device=dev)
        pipe.set_outputs(*([y, x, blurred] if blur_is_output else [y, x]))
    pipe.build()
    return pipe


@pytest.mark.parametrize("dev", ["cpu", "gpu"])
def test_pipeline_blur_passes_untouched_samples_through(dataset, dev):
    """A blur node that p leaves alone for a sample hands that sample's input on (no copy)
    unless its output is a pipeline output: the downstream bytes are the same either way,
    and a sample blur skipped comes out as brightness of the unblurred input."""
    if dev == "gpu" and voxpipe._voxpipe.cuda_device_count() == 0:
        pytest.skip("no GPU")
    device_id = 0 if dev == "gpu" else None
    a = batches(blur_pipeline(dataset, dev, device_id, False), 6)
    b = batches(blur_pipeline(dataset, dev, device_id, True), 6)
    skipped = blurred = 0
    for ba, bb in zip(a, b):
        for ya, yb, xa, x, bl in zip(ba[0], bb[0], ba[1], bb[1], bb[2]):
            assert ya.tobytes() == yb.tobytes()
            assert xa.tobytes() == x.tobytes()  # blur's input is read, never written
            if bl.tobytes() == x.tobytes():
                skipped += 1
                assert ya.tobytes() == (x * np.float32(1.25)).astype(np.float32).tobytes()
            else:
                blurred += 1
    assert skipped and blurred, (skipped, blurred)


def test_chain_with_shape_changing_operators(rng):
    """Any one-input operator may sit in a chain: resize and flip between pointwise runs."""
    xs = [rng.standard_normal(s).astype(np.float32) for s in [(1, 9, 10, 11), (1, 6, 13, 7)]]
    ops = [("brightness", {"factor": 1.5}),
           ("resize", {"size": [5, 6, 7]}),
           ("flip", {"horizontal": {"per_sample": [True, False]}}),
           ("clamp", {"lo": -1.0, "hi": 1.0}),
           ("cast", {"dtype": "float16"})]
    fused = voxpipe.fn.chain(xs, ops, seed=3)
    one = _one_by_one(xs, ops, 3, None)
    for a, b in zip(fused, one):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == (1, 5, 6, 7) and a.tobytes() == b.tobytes()


def masked_pipeline(root, fuse, dev, device_id):
    """cast -> brightness -> noise -> normalize(mask=label) -> cast: the masked normalize is not fused
    (a node with a second input), its neighbours are; the bytes match node by node."""
    pipe = voxpipe.Pipeline(batch_size=2, num_threads=2, device_id=device_id, seed=5,
                            fuse_pointwise=fuse)
    with pipe:
        img, lbl = voxpipe.fn.readers.dataset(root / "dataset.json", shuffle=True)
        b = voxpipe.fn.uniform(range=[0.7, 1.3])
        x = voxpipe.fn.cast(img, dtype="float32", device=dev)
        x = voxpipe.fn.brightness(x, factor=b, p=0.5, device=dev)
        x = voxpipe.fn.gaussian_noise(x, stddev=0.1, p=0.5, device=dev)
        x = voxpipe.fn.normalize(x, mask=lbl, outside="zero", device=dev)
        x = voxpipe.fn.cast(x, dtype="float16", device=dev)
        pipe.set_outputs(x, lbl)
    pipe.build()
    return pipe


@pytest.mark.parametrize("dev", ["cpu", "gpu"])
def test_masked_normalize_fused_equals_unfused(dataset, dev):
    if dev == "gpu" and voxpipe._voxpipe.cuda_device_count() == 0:
        pytest.skip("no GPU")
    did = 0 if dev == "gpu" else None
    a = batches(masked_pipeline(dataset, True, dev, did), 3)
    b = batches(masked_pipeline(dataset, False, dev, did), 3)
    for ba, bb in zip(a, b):
        for oa, ob in zip(ba, bb):
            for ta, tb in zip(oa, ob):
                np.testing.assert_array_equal(ta.view(np.uint8), tb.view(np.uint8))
        for x, lbl in zip(ba[0], ba[1]):
            assert np.all(x[:, lbl == 0] == 0) and np.any(x[:, lbl != 0] != 0)


def test_gpu_chain_kernel_per_sample_level(rng):
    """The GPU apply pass runs one kernel per level (affine only, noise, full) over the samples
    of that level: a batch whose samples draw different stages must match the CPU (float
    rounding: GPU sums in another order) in every voxel of every sample."""
    if voxpipe._voxpipe.cuda_device_count() == 0:
        pytest.skip("no GPU")
    xs = [(rng.standard_normal(s) * 10 + 50).astype(np.float32)
          for s in [(2, 9, 10, 11), (3, 5, 17, 6), (1, 12, 3, 8), (2, 4, 4, 4)]]
    ops = [("gaussian_noise", {"stddev": 2.0, "p": {"per_sample": [1.0, 0.0, 1.0, 0.0]}}),
           ("gamma", {"gamma": 1.3, "p": {"per_sample": [0.0, 0.0, 1.0, 1.0]}}),
           ("brightness", {"factor": {"per_sample": [1.1, 0.9, 1.2, 0.7]}}),
           ("cast", {"dtype": "float16"})]
    cpu = voxpipe.fn.chain(xs, ops, seed=9)
    gpu = voxpipe.fn.chain([voxpipe._as_tensor(x).to("gpu") for x in xs], ops, seed=9)
    for a, b in zip(cpu, gpu):
        a, b = np.asarray(a).astype(np.float64), np.asarray(b.to("cpu")).astype(np.float64)
        assert a.shape == b.shape and np.isfinite(b).all()
        np.testing.assert_allclose(b, a, rtol=2e-3, atol=1e-2)  # float16 ulps at ~50-100

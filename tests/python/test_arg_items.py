"""Arguments as values (the binding's dict -> vp_arg_item path) against the same arguments as
JSON text: the same outputs, byte for byte, and the same errors. Eager voxpipe.fn calls take the
values path; the JSON path is what pipeline files and the C API use."""
import json

import numpy as np
import pytest

import voxpipe
from voxpipe import _voxpipe as _C


def _call(name, xs, args, seed=0, nout=1):
    hs = [voxpipe._as_tensor(x)._h for x in xs]
    return [voxpipe.Tensor(h) for h in _C.ops_call(name, hs, len(xs), args, seed, nout)]


def _same(name, xs, args, seed=0):
    a = _call(name, xs, args, seed)
    b = _call(name, xs, json.dumps(args), seed)
    assert len(a) == len(b) == len(xs)
    for u, v in zip(a, b):
        u, v = u.numpy(), v.numpy()
        assert u.dtype == v.dtype and u.shape == v.shape
        assert u.tobytes() == v.tobytes()
    return a


def _rot(rng, shape):
    """A random rotation about the volume's centre (3 x 4, array order)."""
    r, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    c = (np.array(shape) - 1) / 2
    return np.hstack([r, (c - r @ c)[:, None]])


def test_items_match_json_outputs():
    rng = np.random.default_rng()
    xs = [rng.standard_normal((2, 9 + k, 11, 7)).astype(np.float32) for k in range(3)]
    mats = [_rot(rng, x.shape[1:]).ravel().tolist() for x in xs]
    _same("warp_affine", xs, {"matrix": {"per_sample": mats}, "size": [6, 5, 4],
                              "interp": "linear", "border": "reflect"})
    _same("flip", xs, {"depthwise": True, "horizontal": {"per_sample": [True, False, 1]}})
    _same("brightness", xs, {"factor": {"per_sample": rng.uniform(0.5, 1.5, 3).tolist()},
                             "p": 0.5}, seed=int(rng.integers(1 << 31)))
    _same("gaussian_noise", xs, {"stddev": {"per_sample": [0.1, 0.2, 0.3]}, "p": 1}, seed=7)
    _same("cast", xs, {"dtype": "float16"})
    _same("gaussian_blur", xs, {"sigma": {"per_sample": [[1.0], [0.5, 1, 0], [2]]}})
    _same("clamp", xs, {"lo": -1, "hi": 1})


def test_numpy_values_take_the_values_path():
    rng = np.random.default_rng()
    xs = [rng.standard_normal((5, 6, 7)).astype(np.float32) for _ in range(2)]
    m = np.stack([_rot(rng, (5, 6, 7)).ravel() for _ in range(2)])
    args = {"matrix": {"per_sample": [m[0], m[1]]}, "size": np.array([4, 4, 4])}
    a = _call("warp_affine", xs, args)
    b = _call("warp_affine", xs, json.dumps({"matrix": {"per_sample": m.tolist()},
                                             "size": [4, 4, 4]}))
    for u, v in zip(a, b):
        assert u.numpy().tobytes() == v.numpy().tobytes()
    f = voxpipe.fn.brightness(xs, factor={"per_sample": np.float32([1.5, 0.5])})
    for x, y, k in zip(xs, f, (1.5, 0.5)):
        np.testing.assert_array_equal(y.numpy(), (x * np.float32(k)).astype(np.float32))


BAD = [
    ("slice", {"anchor": [7, 1.5], "shape": [2, 2, 2]}),
    ("slice", {"shape": 1}),
    ("slice", {"shape": []}),
    ("flip", {"bogus": 1}),
    ("flip", {"vertical": 2}),
    ("flip", {"vertical": 0.5}),
    ("flip", {"vertical": "yes"}),
    ("brightness", {"factor": "x"}),
    ("brightness", {"factor": [1.0]}),
    ("brightness", {"factor": float("nan")}),
    ("brightness", {"factor": {"per_sample": [1.0]}}),
    ("brightness", {"p": 2}),
    ("cast", {"dtype": "float128"}),
    ("cast", {"dtype": 3}),
    ("warp_affine", {"size": [4, 4, 4.5]}),
    ("warp_affine", {"size": [4, 4, 1 << 60]}),
    ("warp_affine", {"interp": "quartic"}),
    ("slice", {"shape": {"per_sample": [[2, 2, 2], [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]]}}),
    ("slice", {"shape": [2, 2, 2], "out_of_bounds_policy": {"per_sample": ["pad", "trim"]}}),
    ("cast", {"dtype": {"per_sample": ["float16", "float32"]}}),
]


@pytest.mark.parametrize("name,args", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_items_reject_as_json_does(name, args):
    xs = [np.zeros((3, 4, 5), np.float32) for _ in range(2)]
    try:
        text = json.dumps(args, allow_nan=False)
    except ValueError:
        text = None  # NaN: not JSON at all, so only the values path sees it
    errors = []
    for form in (args, text):
        if form is None:
            continue
        with pytest.raises((ValueError, TypeError)) as e:
            try:
                _call(name, xs, form)
            except _C.NeedsJson:
                _call(name, xs, json.dumps(form))
        errors.append(str(e.value))
    # the argument (or the unknown name) is named in every message
    assert all(any(k in m for k in args) for m in errors), errors
    if len(errors) == 2 and "nan" not in str(args):
        assert errors[0].split(":")[:2] == errors[1].split(":")[:2], errors


def test_values_the_items_path_leaves_to_json():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    with pytest.raises(_C.NeedsJson):
        _call("slice", [x], {"shape": [[2]]})
    with pytest.raises(_C.NeedsJson):
        _call("flip", [x], {"vertical": None})
    # and voxpipe.fn falls back: a dtype object is converted for the JSON text
    y = voxpipe.fn.cast(x, dtype=np.float16)
    assert y.numpy().dtype == np.float16


def test_chain_items_match_json():
    rng = np.random.default_rng()
    xs = [rng.standard_normal((2, 8, 9, 10)).astype(np.float32) for _ in range(2)]
    ops = [("gaussian_noise", {"stddev": {"per_sample": [0.1, 0.3]}, "p": 1.0}),
           ("brightness", {"factor": {"per_sample": [1.2, 0.8]}}),
           ("contrast", {"factor": 1.3}),
           ("cast", {"dtype": "float16"})]
    hs = [voxpipe._as_tensor(x)._h for x in xs]
    names = [n for n, _ in ops]
    a = _C.ops_call_chain(names, [kw for _, kw in ops], hs, 2, 11)
    b = _C.ops_call_chain(names, [json.dumps(kw) for _, kw in ops], hs, 2, 11)
    for u, v in zip(a, b):
        assert voxpipe.Tensor(u).numpy().tobytes() == voxpipe.Tensor(v).numpy().tobytes()
    with pytest.raises(ValueError, match="brightness: argument 'factor'"):
        voxpipe.fn_chain(xs, [("brightness", {"factor": {"per_sample": [1.0]}})])
    with pytest.raises(ValueError, match="brightness: argument 'factor'"):
        voxpipe.fn_chain(xs, [("brightness", {"factor": {"per_sample": [1.0, float("inf")]}})])

"""voxpipe.fn operators against NumPy references (CPU; the GPU test in
tests/cuda checks the GPU bodies against these CPU ones)."""
import os

import numpy as np
import pytest

import voxpipe

SEED = int(os.environ.get("VP_TEST_SEED", np.random.SeedSequence().entropy % (1 << 32)))
print("VP_TEST_SEED", SEED)
DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "float16", "float32",
          "float64"]


def rand(rng, shape, dtype):
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
    return (rng.standard_normal(shape) * 300).astype(dt)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 9), (4, 5, 6), (2, 3, 4, 5)])
def test_flip(dtype, shape):
    rng = np.random.default_rng(SEED)
    a = rand(rng, shape, dtype)
    for d, v, h in [(1, 0, 0), (0, 1, 1), (1, 1, 1), (0, 0, 0)]:
        got = np.asarray(voxpipe.fn.flip(a, depthwise=bool(d), vertical=bool(v), horizontal=bool(h)))
        want = a
        sn = min(a.ndim, 3)
        axes = [ax for ax, f in zip(range(a.ndim - 3, a.ndim), (d, v, h)) if f and ax >= a.ndim - sn]
        if axes:
            want = np.flip(a, axis=tuple(axes))
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_slice_pad(dtype):
    rng = np.random.default_rng(SEED + 1)
    a = rand(rng, (2, 6, 7, 8), dtype)
    anchor, shape = [-2, 3, 5], [5, 6, 6]
    got = np.asarray(voxpipe.fn.slice(a, anchor=anchor, shape=shape, out_of_bounds_policy="pad",
                                      fill_value=3))
    padded = np.full((2, 6 + 10, 7 + 10, 8 + 10), 3, dtype=a.dtype)
    padded[:, 5:11, 5:12, 5:13] = a
    want = padded[:, 5 - 2:5 - 2 + 5, 5 + 3:5 + 3 + 6, 5 + 5:5 + 5 + 6]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("to", DTYPES)
def test_cast_from_float64(to):
    rng = np.random.default_rng(SEED + 2)
    a = np.concatenate([rng.standard_normal(500) * 1e5, np.arange(-40, 40) + 0.5, [np.nan]])
    got = np.asarray(voxpipe.fn.cast(a, dtype=to))
    dt = np.dtype(to)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        r = np.nan_to_num(np.rint(a), nan=0.0)
        want = np.clip(r, info.min, info.max).astype(dt)
        want[r >= 2.0 ** 63] = info.max  # float64 cannot hold int64's max exactly
    else:
        with np.errstate(over="ignore"):  # overflow to inf is the expected result
            want = a.astype(np.float32).astype(dt) if dt == np.float16 else a.astype(dt)
    np.testing.assert_array_equal(got, want)


def test_noise_stats():
    a = np.zeros((64, 64, 64), np.float32)
    got = np.asarray(voxpipe.fn.gaussian_noise(a, mean=2.0, stddev=0.5, seed=SEED)).astype(np.float64)
    n = got.size
    assert abs(got.mean() - 2.0) < 5 * 0.5 / np.sqrt(n)
    assert abs(got.std() - 0.5) < 5 * 0.5 / np.sqrt(2 * n)
    again = np.asarray(voxpipe.fn.gaussian_noise(a, mean=2.0, stddev=0.5, seed=SEED))
    np.testing.assert_array_equal(got.astype(np.float32), again)

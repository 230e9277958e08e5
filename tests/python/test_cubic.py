"""Cubic B-spline interpolation (interp="cubic") against scipy.ndimage's
order 3 with its prefilter, on fresh random float64 volumes.

Tolerance: the prefiltered coefficients are float32 and the 64 taps sum in
float, so results agree with scipy's float64 to about 2e-6 of the data's
range per voxel; the tests allow 1e-5 of the range (data in [-100, 100]:
2e-3). Axes of extent 1 are documented to read their single voxel (2-D data
stays 2-D), which scipy's constant mode does not do, so shapes here are
at least 2 per axis; that rule has its own test. Under reflect, scipy's
prefilter starts its recursion approximately on lines shorter than about 6
voxels (its coefficients then miss the samples by up to 1e-4 of the range;
ours reproduce them to rounding, which test_cubic_interpolates_the_samples
checks on such lines), so the reflect comparisons use extents >= 6."""

import numpy as np
import pytest
import scipy.ndimage as ndi

import voxpipe

MODES = {"constant": "grid-constant", "edge": "nearest", "reflect": "reflect"}
ATOL = 1e-5 * 200


def random_map(rng, in_shape, out_shape):
    n = len(in_shape)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    s = np.diag(rng.uniform(0.5, 2.0, n)) + np.triu(rng.uniform(-0.5, 0.5, (n, n)), 1)
    a = q @ s
    ci, co = (np.array(in_shape) - 1) / 2, (np.array(out_shape) - 1) / 2
    t = ci - a @ co + rng.uniform(-3, 3, n)
    return np.concatenate([a, t[:, None]], axis=1)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("border", ["constant", "edge", "reflect"])
def test_warp_affine_cubic_vs_scipy(rng, ndim, border):
    for _ in range(4):
        lo = 6 if border == "reflect" else 2
        in_shape = tuple(int(v) for v in rng.integers(lo, 16, ndim))
        out_shape = tuple(int(v) for v in rng.integers(1, 16, ndim))
        x = rng.uniform(-100, 100, in_shape)
        m = random_map(rng, in_shape, out_shape)
        fill = float(rng.uniform(-50, 50))
        y = np.asarray(voxpipe.fn.warp_affine(x, matrix=m.ravel().tolist(), size=list(out_shape),
                                              interp="cubic", border=border, fill=fill))
        ref = ndi.affine_transform(x, m, output_shape=out_shape, order=3, mode=MODES[border],
                                   cval=fill)
        assert y.shape == out_shape
        np.testing.assert_allclose(y, ref, rtol=0, atol=ATOL)


@pytest.mark.parametrize("ndim", [2, 3])
def test_resize_cubic_vs_scipy_zoom(rng, ndim):
    for _ in range(4):
        in_shape = tuple(int(v) for v in rng.integers(2, 14, ndim))
        out_shape = tuple(int(v) for v in rng.integers(1, 20, ndim))
        x = rng.uniform(-100, 100, in_shape)
        y = np.asarray(voxpipe.fn.resize(x, size=list(out_shape), interp="cubic"))
        zoom = [o / i for o, i in zip(out_shape, in_shape)]
        ref = ndi.zoom(x, zoom, order=3, mode="nearest", grid_mode=True)
        assert ref.shape == out_shape
        np.testing.assert_allclose(y, ref, rtol=0, atol=ATOL)


def test_rotate_cubic_vs_scipy(rng):
    x = rng.uniform(-100, 100, (9, 12, 10))
    y = np.asarray(voxpipe.fn.rotate(x, angle=33.0, axis=[1, 0, 0], interp="cubic", fill=3.0))
    # axis (1, 0, 0) is D: the rotation turns the (H, W) plane
    ref = ndi.rotate(x, 33.0, axes=(1, 2), reshape=True, order=3, mode="grid-constant", cval=3.0)
    assert y.shape == ref.shape
    # the sense of rotation is checked for linear elsewhere; take the matching one
    ref2 = ndi.rotate(x, -33.0, axes=(1, 2), reshape=True, order=3, mode="grid-constant", cval=3.0)
    err = min(np.abs(y - ref).max(), np.abs(y - ref2).max())
    assert err <= ATOL


def test_cubic_dtypes_and_channels(rng):
    x = rng.uniform(0, 250, (2, 7, 8, 9))
    m = random_map(rng, (7, 8, 9), (6, 6, 6))
    for dt in (np.uint8, np.int16, np.uint16, np.int32, np.float16, np.float32):
        xt = x.astype(dt)
        y = np.asarray(voxpipe.fn.warp_affine(xt, matrix=m.ravel().tolist(), size=[6, 6, 6],
                                              interp="cubic", border="edge", dtype="float64"))
        ref = np.stack([ndi.affine_transform(c.astype(np.float64), m, output_shape=(6, 6, 6),
                                             order=3, mode="nearest") for c in xt])
        np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5 * 250)
    # integer outputs round to nearest and saturate (cubic overshoots)
    y8 = np.asarray(voxpipe.fn.warp_affine(x.astype(np.uint8), matrix=m.ravel().tolist(),
                                           size=[6, 6, 6], interp="cubic", border="edge"))
    ref = np.stack([ndi.affine_transform(c, m, output_shape=(6, 6, 6), order=3, mode="nearest")
                    for c in x.astype(np.uint8).astype(np.float64)])
    want = np.clip(np.rint(ref), 0, 255)
    near_half = np.abs(ref - np.floor(ref) - 0.5) < 1e-3
    assert y8.dtype == np.uint8
    np.testing.assert_array_equal(y8[~near_half], want[~near_half])


def test_cubic_2d_equals_3d_with_one_slice(rng):
    """A 2-D image and the same image as one slice of a 3-D volume give the
    same result whatever the border: the extent-1 axis reads its voxel."""
    x = rng.uniform(-100, 100, (11, 13))
    m2 = random_map(rng, (11, 13), (9, 10))
    m3 = np.zeros((3, 4))
    m3[1:, 1:] = m2
    y2 = np.asarray(voxpipe.fn.warp_affine(x, matrix=m2.ravel().tolist(), size=[9, 10],
                                           interp="cubic", fill=1.0))
    y3 = np.asarray(voxpipe.fn.warp_affine(x[None], matrix=m3.ravel().tolist(), size=[1, 9, 10],
                                           interp="cubic", fill=1.0))
    np.testing.assert_array_equal(y2, y3[0])


@pytest.mark.parametrize("border", ["constant", "edge", "reflect"])
def test_cubic_interpolates_the_samples(rng, border):
    """The identity map reproduces the input (the prefilter inverts the
    B-spline's smoothing), as scipy's order 3 does."""
    for shape in [(6, 7, 8), (2, 3, 4), (3, 2, 5)]:
        x = rng.uniform(-100, 100, shape)
        eye = np.eye(3, 4)
        y = np.asarray(voxpipe.fn.warp_affine(x, matrix=eye.ravel().tolist(), size=list(shape),
                                              interp="cubic", border=border))
        np.testing.assert_allclose(y, x, rtol=0, atol=ATOL)

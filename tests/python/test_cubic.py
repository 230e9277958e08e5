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


# ---------------------------------------------------------------------------
# The separable path (axis-aligned maps: resize, zoom, diagonal warps), against
# a float64 oracle of the documented rule (src/ops/bspline.h), written
# independently of the library: per axis, pad (fill or edge voxel, 12 per side;
# reflect: none), solve the B-spline system (1, 4, 1) / 6 with the mirror rule
# as a dense linear system, and interpolate with the B-spline weights, clamping
# (constant, edge) or mirroring (reflect) coefficient indices; an axis of extent
# 1 reads its voxel. The oracle is itself checked against scipy where scipy
# follows the same rule (extents >= 2, reflect >= 6).

PAD = 12


def bspline_weights(f):
    g = 1.0 - f
    return [g ** 3 / 6, 2 / 3 - f ** 2 + f ** 3 / 2, 2 / 3 - g ** 2 + g ** 3 / 2, f ** 3 / 6]


def oracle_line(x, coords, border, fill):
    n = len(x)
    if n == 1:
        return np.full(len(coords), x[0])
    pad = 0 if border == "reflect" else PAD
    if border == "constant":
        xp = np.concatenate([np.full(pad, fill), x, np.full(pad, fill)])
    elif border == "edge":
        xp = np.concatenate([np.full(pad, x[0]), x, np.full(pad, x[-1])])
    else:
        xp = np.asarray(x, dtype=np.float64)
    N = len(xp)
    half = border != "constant"  # half-sample mirror (c[-1] = c[0]) or whole-sample (c[1])
    A = np.zeros((N, N))
    for i in range(N):
        for k, b in ((-1, 1 / 6), (0, 4 / 6), (1, 1 / 6)):
            j = i + k
            if j < 0:
                j = -j - 1 if half else -j
            if j >= N:
                j = 2 * N - 1 - j if half else 2 * N - 2 - j
            A[i, j] += b
    c = np.linalg.solve(A, xp)
    out = np.empty(len(coords))
    for o, t in enumerate(np.asarray(coords, dtype=np.float64) + pad):
        fl = np.floor(t)
        w = bspline_weights(t - fl)
        acc = 0.0
        for k in range(4):
            j = int(fl) - 1 + k
            if border == "reflect":
                m = j % (2 * N)
                j = m if m < N else 2 * N - 1 - m
            else:
                j = min(max(j, 0), N - 1)
            acc += w[k] * c[j]
        out[o] = acc
    return out


def oracle(x, scale, offset, out_shape, border, fill=0.0):
    """Input coordinate of output o on axis a: scale[a] * o + offset[a]."""
    y = np.asarray(x, dtype=np.float64)
    for a in range(y.ndim):
        coords = scale[a] * np.arange(out_shape[a]) + offset[a]
        y = np.apply_along_axis(oracle_line, a, y, coords, border, fill)
    return y


def diag_matrix(scale, offset):
    n = len(scale)
    m = np.zeros((n, n + 1))
    m[np.arange(n), np.arange(n)] = scale
    m[:, n] = offset
    return m


@pytest.mark.parametrize("border", ["constant", "edge", "reflect"])
def test_separable_oracle_matches_scipy(rng, border):
    """The oracle is scipy's order 3 where scipy follows the same rule."""
    for _ in range(3):
        lo = 6 if border == "reflect" else 2
        in_shape = tuple(int(v) for v in rng.integers(lo, 12, 3))
        out_shape = tuple(int(v) for v in rng.integers(1, 14, 3))
        scale = rng.uniform(0.3, 2.5, 3) * rng.choice([-1, 1], 3)
        offset = rng.uniform(-3, 3, 3) + (np.array(in_shape) - 1) * (scale < 0)
        fill = float(rng.uniform(-50, 50))
        x = rng.uniform(-100, 100, in_shape)
        ref = ndi.affine_transform(x, diag_matrix(scale, offset), output_shape=out_shape, order=3,
                                   mode=MODES[border], cval=fill)
        # the padded ends reach the data by |z|^12 ~ 1.4e-7 of the range (scipy
        # starts its recursions approximately, the oracle solves exactly)
        np.testing.assert_allclose(oracle(x, scale, offset, out_shape, border, fill), ref,
                                   rtol=0, atol=1e-6 * 200)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("border", ["constant", "edge", "reflect"])
def test_separable_warp_extents_1_to_5(rng, ndim, border):
    """Diagonal warps (up and down per axis, flips, shifts) on short axes,
    extents 1..5 in and out, every border, against the oracle."""
    for _ in range(12):
        in_shape = tuple(int(v) for v in rng.integers(1, 6, ndim))
        out_shape = tuple(int(v) for v in rng.integers(1, 6, ndim))
        scale = rng.uniform(0.2, 3.0, ndim) * rng.choice([-1, 1], ndim)
        offset = rng.uniform(-2, 2, ndim) + (np.array(in_shape) - 1) * (scale < 0)
        fill = float(rng.uniform(-50, 50))
        x = rng.uniform(-100, 100, in_shape)
        m = diag_matrix(scale, offset)
        y = np.asarray(voxpipe.fn.warp_affine(x, matrix=m.ravel().tolist(), size=list(out_shape),
                                              interp="cubic", border=border, fill=fill))
        np.testing.assert_allclose(y, oracle(x, scale, offset, out_shape, border, fill), rtol=0,
                                   atol=ATOL, err_msg=f"{in_shape} -> {out_shape} {scale} {offset}")


@pytest.mark.parametrize("border", ["constant", "edge", "reflect"])
def test_zoom_cubic_vs_scipy(rng, border):
    """zoom (centred, non-integer factors in and out per axis) against
    scipy.ndimage.affine_transform's order 3."""
    for _ in range(4):
        lo = 6 if border == "reflect" else 2
        shape = tuple(int(v) for v in rng.integers(lo, 20, 3))
        f = rng.uniform(0.45, 2.2, 3)
        fill = float(rng.uniform(-50, 50))
        x = rng.uniform(-100, 100, shape)
        y = np.asarray(voxpipe.fn.zoom(x, scale=f.tolist(), interp="cubic", border=border,
                                       fill=fill))
        ctr = (np.array(shape) - 1) / 2
        ref = ndi.affine_transform(x, diag_matrix(1 / f, ctr - ctr / f), output_shape=shape,
                                   order=3, mode=MODES[border], cval=fill)
        np.testing.assert_allclose(y, ref, rtol=0, atol=ATOL)


def test_resize_cubic_short_and_identity_axes(rng):
    """resize (edge border) with extents 1..5 and with axes kept (the identity
    axes the separable path skips), against the oracle and scipy.zoom."""
    for _ in range(20):
        in_shape = tuple(int(v) for v in rng.integers(1, 6, 3))
        out_shape = tuple(int(v) if rng.random() < 0.6 else in_shape[a]
                          for a, v in enumerate(rng.integers(1, 9, 3)))
        x = rng.uniform(-100, 100, in_shape)
        y = np.asarray(voxpipe.fn.resize(x, size=list(out_shape), interp="cubic"))
        r = np.array(in_shape) / np.array(out_shape)
        ref = oracle(x, r, 0.5 * r - 0.5, out_shape, "edge")
        np.testing.assert_allclose(y, ref, rtol=0, atol=ATOL, err_msg=f"{in_shape} -> {out_shape}")
        if min(in_shape) >= 2:
            z = ndi.zoom(x, [o / i for o, i in zip(out_shape, in_shape)], order=3, mode="nearest",
                         grid_mode=True)
            np.testing.assert_allclose(y, z, rtol=0, atol=ATOL)


def test_resize_cubic_batch_dtypes_channels(rng):
    """A batch of mixed shapes (2-D, 3-D, channels) and input dtypes through
    the separable path: each sample as the oracle per channel, float64 out;
    integer outputs round and saturate."""
    shapes = [(9, 14), (2, 7, 6, 11), (3, 5, 4, 6)]
    sizes = [[13, 5], [10, 3, 17], [2, 9, 4]]
    for dt in (np.uint8, np.int16, np.uint16, np.int32, np.float16, np.float32, np.float64):
        xs = [rng.uniform(0, 250, s).astype(dt) for s in shapes]
        ys = voxpipe.fn.resize(xs, size={"per_sample": sizes}, interp="cubic", dtype="float64")
        for x, y, size in zip(xs, ys, sizes):
            sp = x.shape[-len(size):]
            r = np.array(sp) / np.array(size)
            ref = np.stack([oracle(c.astype(np.float64), r, 0.5 * r - 0.5, size, "edge")
                            for c in x.reshape((-1,) + sp)]).reshape(x.shape[:-len(size)] + tuple(size))
            np.testing.assert_allclose(np.asarray(y), ref, rtol=0, atol=1e-5 * 250,
                                       err_msg=str(dt))
    x = rng.uniform(0, 255, (12, 10, 9)).astype(np.uint8)
    y8 = np.asarray(voxpipe.fn.resize(x, size=[7, 15, 5], interp="cubic"))
    r = np.array(x.shape) / np.array([7, 15, 5])
    ref = oracle(x, r, 0.5 * r - 0.5, (7, 15, 5), "edge")
    want = np.clip(np.rint(ref), 0, 255)
    near_half = np.abs(ref - np.floor(ref) - 0.5) < 1e-3
    assert y8.dtype == np.uint8
    np.testing.assert_array_equal(y8[~near_half], want[~near_half])


def test_separable_agrees_with_coefficient_path(rng):
    """A diagonal warp and the same warp with an off-diagonal term of 1e-300
    (which takes the 64-tap coefficient path) agree within the tolerance."""
    for border in ("constant", "edge", "reflect"):
        x = rng.uniform(-100, 100, (11, 17, 13))
        scale, offset = rng.uniform(0.4, 2.0, 3), rng.uniform(-2, 2, 3)
        m = diag_matrix(scale, offset)
        m2 = m.copy()
        m2[2, 0] = 1e-300
        kw = dict(size=[9, 12, 20], interp="cubic", border=border, fill=4.5)
        a = np.asarray(voxpipe.fn.warp_affine(x, matrix=m.ravel().tolist(), **kw))
        b = np.asarray(voxpipe.fn.warp_affine(x, matrix=m2.ravel().tolist(), **kw))
        np.testing.assert_allclose(a, b, rtol=0, atol=ATOL)

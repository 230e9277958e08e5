"""rotate, zoom, elastic, elastic_grid and random_spatial against scipy.ndimage.

Oracles: scipy.ndimage.rotate / affine_transform / map_coordinates with
order 0 or 1 and prefilter=False. Our constant border is scipy's
'grid-constant' (fill takes part in the interpolation near the edge; scipy's
'constant' instead stops interpolating one voxel outside), 'edge' is
'nearest'. rotate(angle=a) equals scipy.ndimage.rotate(x, a) in 2-D; in 3-D
about d (axis [1, 0, 0]) it is axes=(1, 2) with a, about h axes=(0, 2) with
-a, about w axes=(0, 1) with a (right-handed in array order).

The random draws are replayed in NumPy from the documented counters: Philox
4x32-10 (keys as vp_op_eager_key makes them), vp_u01f/vp_u01d/vp_normal2f,
so the control grids and the random_spatial matrices are checked against an
independent implementation; the displacement field u(o) is rebuilt from the
grid with resample.h's cubic B-spline rule. Nearest results must match
exactly (voxels whose coordinate lies within 1e-6 of a rounding tie are
skipped where NumPy's float32 transcendental functions may differ by an ulp
from the C library's); linear within 1e-9 of the value range (1e-5 where the
grid's float32 normals enter)."""

import numpy as np
import pytest
import scipy.ndimage as ndi

import voxpipe

MODES = {"constant": "grid-constant", "edge": "nearest", "reflect": "reflect"}
MASK = np.uint64(0xFFFFFFFF)

# ---------------------------------------------------------------- Philox


def _philox(c, k0, k1):
    """Philox4x32-10 on counters c (4 arrays of uint64 holding 32-bit words)."""
    c0, c1, c2, c3 = (np.asarray(v, np.uint64) & MASK for v in c)
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & MASK,
                          (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & MASK)
        k0 = (k0 + np.uint64(0x9E3779B9)) & MASK
        k1 = (k1 + np.uint64(0xBB67AE85)) & MASK
    return c0, c1, c2, c3


def eager_key(op, seed):
    h = 2166136261
    for b in op.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    r = _philox(([h], [0x766F7870], [0], [0]), seed & 0xFFFFFFFF, seed >> 32)
    return int(r[0][0]), int(r[1][0])


def draw(key, sample, elements, iteration=0):
    e = np.asarray(elements, np.uint64)
    n = e.shape
    return _philox((e & MASK, e >> np.uint64(32), np.full(n, sample), np.full(n, iteration)),
                   *key)


def u01f(x):
    return ((((x >> np.uint64(9)) << np.uint64(1)) | np.uint64(1)).astype(np.float32)
            * np.float32(2.0**-24))


def u01d(hi, lo):
    m = (hi << np.uint64(20)) | (lo >> np.uint64(12))
    return ((m << np.uint64(1)) | np.uint64(1)).astype(np.float64) * 2.0**-53


def normal2f(a, b):
    r = np.sqrt(np.float32(-2.0) * np.log(u01f(a)))
    t = np.float32(6.283185307179586) * u01f(b)
    return r * np.cos(t), r * np.sin(t)


def grid_points(n, s):
    return 1 if n <= 1 else int(np.ceil((n - 1) / s)) + 1


def control_grid(key, sample, shape, spacing, magnitude, element0=0):
    """elastic.c's grid: value e = magnitude * z_e, z in gaussian_noise's layout."""
    g = [grid_points(n, s) for n, s in zip(shape, spacing)]
    count = 3 * int(np.prod(g))
    r = draw(key, sample, element0 + np.arange((count + 3) // 4, dtype=np.uint64))
    a, b = normal2f(r[0], r[1]), normal2f(r[2], r[3])
    z = np.stack([a[0], a[1], b[0], b[1]], axis=1).ravel()[:count]
    v = (magnitude * z.astype(np.float64)).astype(np.float32).reshape(*g, 3)
    for ax, n in enumerate(shape):
        if n <= 1:
            v[..., ax] = 0
    return v


def bspline_field(nodes, shape, spacing):
    """u(o) on the grid of output voxels: resample.h's uniform cubic B-spline,
    control indices clamped to the grid."""
    u = nodes.astype(np.float64)
    for ax, (n, s) in enumerate(zip(shape, spacing)):
        t = np.arange(n) / s
        fl = np.floor(t)
        f = t - fl
        w0, w1, w3 = (1 - f) ** 3 / 6, 0.5 * f**3 - f**2 + 2 / 3, f**3 / 6
        w = np.stack([w0, w1, 1 - w0 - w1 - w3, w3], axis=1)  # (n, 4)
        idx = np.clip(fl[:, None].astype(int) - 1 + np.arange(4), 0, u.shape[ax] - 1)
        moved = np.moveaxis(u, ax, 0)[idx]  # (n, 4, ...)
        u = np.moveaxis(np.einsum("nk,nk...->n...", w, moved), 0, ax)
    return u  # shape + (3,)


def far_from_ties(coords):
    frac = coords - np.floor(coords)
    return np.all(np.abs(frac - 0.5) > 1e-6, axis=0)


# ---------------------------------------------------------------- rotate


def rot_fwd(axis, deg):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    th = np.deg2rad(deg)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def rotation_ties_ok(lin, in_shape, out_shape):
    """Output voxels whose input coordinate lin (o - co) + ci is not within 1e-6
    of a nearest-rounding tie (an even extent puts the centre on one: there
    scipy and we may round either way)."""
    o = np.indices(out_shape, float).reshape(len(out_shape), -1)
    co, ci = (np.array(out_shape) - 1) / 2, (np.array(in_shape) - 1) / 2
    x = lin @ (o - co[:, None]) + ci[:, None]
    return far_from_ties(x).reshape(out_shape)


def plane(n, axes, deg):
    """scipy.ndimage.rotate's output -> input matrix, embedded in n dims."""
    m = np.eye(n)
    c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
    i, j = axes
    m[i, i], m[i, j], m[j, i], m[j, j] = c, s, -s, c
    return m


def angles(rng):
    return [90.0, 180.0, -270.0] + [float(a) for a in rng.uniform(-180, 180, 3)]


@pytest.mark.parametrize("interp", ["nearest", "linear"])
@pytest.mark.parametrize("keep", [False, True])
def test_rotate_2d_vs_scipy(rng, interp, keep):
    for a in angles(rng):
        x = rng.uniform(-100, 100, tuple(rng.integers(1, 15, 2)))
        fill = float(rng.uniform(-50, 50))
        y = np.asarray(voxpipe.fn.rotate(x, angle=a, keep_size=keep, interp=interp, fill=fill))
        ref = ndi.rotate(x, a, reshape=not keep, order=int(interp == "linear"),
                         mode="grid-constant", cval=fill, prefilter=False)
        assert y.shape == ref.shape, (a, x.shape)
        if interp == "nearest":
            ok = rotation_ties_ok(plane(2, (0, 1), a), x.shape, y.shape)
            np.testing.assert_array_equal(y[ok], ref[ok])
        else:
            np.testing.assert_allclose(y, ref, rtol=0, atol=1e-9 * 250)


@pytest.mark.parametrize("interp", ["nearest", "linear"])
@pytest.mark.parametrize("keep", [False, True])
def test_rotate_3d_about_each_axis_vs_scipy(rng, interp, keep):
    # (our axis, scipy axes, sign of scipy's angle)
    cases = [([1, 0, 0], (1, 2), 1), ([0, 1, 0], (0, 2), -1), ([0, 0, 1], (0, 1), 1)]
    for axis, axes, sign in cases:
        for a in angles(rng)[::2]:
            x = rng.uniform(-100, 100, tuple(rng.integers(1, 11, 3)))
            y = np.asarray(voxpipe.fn.rotate(x, angle=a, axis=axis, keep_size=keep,
                                             interp=interp, border="constant", fill=3.0))
            ref = ndi.rotate(x, sign * a, axes=axes, reshape=not keep,
                             order=int(interp == "linear"), mode="grid-constant", cval=3.0,
                             prefilter=False)
            assert y.shape == ref.shape, (axis, a, x.shape)
            if interp == "nearest":
                ok = rotation_ties_ok(plane(3, axes, sign * a), x.shape, y.shape)
                np.testing.assert_array_equal(y[ok], ref[ok])
            else:
                np.testing.assert_allclose(y, ref, rtol=0, atol=1e-9 * 250)


def test_rotate_3d_any_axis_channels_borders(rng):
    """Any axis, channels, edge/reflect borders: against affine_transform with a
    Rodrigues matrix and the corner bounding box computed here."""
    for border in ["constant", "edge", "reflect"]:
        shape = tuple(int(v) for v in rng.integers(2, 10, 3))
        x = rng.uniform(-100, 100, (2,) + shape)
        axis, a = rng.normal(size=3), float(rng.uniform(-180, 180))
        y = np.asarray(voxpipe.fn.rotate(x, angle=a, axis=list(axis), border=border))
        R = rot_fwd(axis, a)
        corners = np.array([[i * shape[0], j * shape[1], k * shape[2]]
                            for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)
        b = corners @ R.T
        out = tuple(int(v) for v in np.floor(b.max(0) - b.min(0) + 0.5))
        assert y.shape == (2,) + out
        ci, co = (np.array(shape) - 1) / 2, (np.array(out) - 1) / 2
        for ch in range(2):
            ref = ndi.affine_transform(x[ch], R.T, offset=ci - R.T @ co, output_shape=out,
                                       order=1, mode=MODES[border], prefilter=False)
            np.testing.assert_allclose(y[ch], ref, rtol=0, atol=1e-9 * 250)


def test_rotate_metadata_keeps_world_positions(rng, tmp_path):
    a_in = np.eye(4)
    a_in[:3] = rng.uniform(-2, 2, (3, 4))
    path = str(tmp_path / "v.nii")
    voxpipe.save(path, rng.uniform(size=(5, 6, 7)).astype(np.float32), affine=a_in)
    vol = voxpipe.load(path)
    axis, ang = rng.normal(size=3), 37.0
    y = voxpipe.fn.rotate(vol, angle=ang, axis=list(axis))
    R = rot_fwd(axis, ang)
    ci, co = (np.array(vol.shape) - 1) / 2, (np.array(y.shape) - 1) / 2
    a_src = np.asarray(vol.affine).reshape(4, 4)
    a_out = np.asarray(y.affine).reshape(4, 4)
    for o in rng.uniform(0, 4, (5, 3)):
        p = R.T @ (o - co) + ci
        np.testing.assert_allclose(a_out @ np.append(o[::-1], 1), a_src @ np.append(p[::-1], 1),
                                   rtol=1e-9, atol=1e-9)


def test_rotate_errors():
    with pytest.raises(Exception, match="axis"):
        voxpipe.fn.rotate(np.zeros((3, 4, 5)), angle=3.0, axis=[0, 0, 0])
    with pytest.raises(Exception, match="spatial axes"):
        voxpipe.fn.rotate(np.zeros(5), angle=3.0)


# ---------------------------------------------------------------- zoom


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("interp", ["nearest", "linear"])
@pytest.mark.parametrize("border", ["constant", "edge", "reflect"])
def test_zoom_vs_affine_transform(rng, ndim, interp, border):
    for iso in (True, False):
        shape = tuple(int(v) for v in rng.integers(1, 14, ndim))
        x = rng.uniform(-100, 100, shape)
        s = rng.uniform(0.5, 2.0, 1 if iso else ndim) * (1 + 1e-7 * rng.uniform())
        y = np.asarray(voxpipe.fn.zoom(x, scale=list(s), interp=interp, border=border, fill=-7.0))
        f = np.broadcast_to(s, (ndim,))
        c = (np.array(shape) - 1) / 2
        ref = ndi.affine_transform(x, 1 / f, offset=c - c / f, order=int(interp == "linear"),
                                   mode=MODES[border], cval=-7.0, prefilter=False)
        assert y.shape == shape
        if interp == "nearest":
            np.testing.assert_array_equal(y, ref)
        else:
            np.testing.assert_allclose(y, ref, rtol=0, atol=1e-9 * 250)


def test_zoom_label_dtype_and_spacing(rng):
    lab = rng.integers(0, 5, (9, 10, 11)).astype(np.uint8)
    y = voxpipe.fn.zoom(lab, scale=[1.3, 0.8, 1.1], interp="nearest")
    assert np.asarray(y).dtype == np.uint8
    assert set(np.unique(np.asarray(y))) <= set(range(5))
    np.testing.assert_allclose(y.spacing, [1 / 1.3, 1 / 0.8, 1 / 1.1], rtol=1e-12)


# ---------------------------------------------------------------- elastic


@pytest.mark.parametrize("shape,spacing", [((1, 37, 50), [1, 16, 9]), ((12, 20, 9), [5, 7, 3]),
                                           ((1, 1, 1), [32, 32, 32])])
def test_elastic_grid_replays_philox(shape, spacing):
    seed = 1234567 + shape[1]
    outs = voxpipe.fn.elastic_grid(shape=list(shape), grid_spacing=spacing, magnitude=2.5,
                                   seed=seed, batch_size=3)
    key = eager_key("elastic_grid", seed)
    for i, g in enumerate(outs):
        g = np.asarray(g)
        want = control_grid(key, i, shape, spacing, 2.5)
        assert g.dtype == np.float32 and g.shape == want.shape
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)
    if shape[0] == 1:
        assert np.all(np.asarray(outs[0])[..., 0] == 0)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("interp", ["nearest", "linear"])
@pytest.mark.parametrize("border", ["constant", "edge", "reflect"])
def test_elastic_vs_map_coordinates(rng, ndim, interp, border):
    seed = int(rng.integers(1, 2**40))
    shapes = [tuple(int(v) for v in rng.integers(2, 20, ndim)) for _ in range(3)]
    xs = [rng.uniform(-100, 100, s) for s in shapes]
    spacing = [float(v) for v in rng.uniform(2, 8, ndim)]
    ys = voxpipe.fn.elastic(xs, grid_spacing=spacing, magnitude=3.0, interp=interp,
                            border=border, fill=5.0, seed=seed)
    key = eager_key("elastic", seed)
    for i, (x, y) in enumerate(zip(xs, ys)):
        shape3 = (1,) * (3 - ndim) + x.shape
        sp3 = [1.0] * (3 - ndim) + spacing
        u = bspline_field(control_grid(key, i, shape3, sp3, 3.0), shape3, sp3)
        u = u.reshape(x.shape + (3,))[..., 3 - ndim:]
        coords = np.indices(x.shape, float) + np.moveaxis(u, -1, 0)
        ref = ndi.map_coordinates(x, coords, order=int(interp == "linear"), mode=MODES[border],
                                  cval=5.0, prefilter=False)
        y = np.asarray(y)
        assert y.shape == x.shape and np.abs(u).max() > 0.1
        if interp == "nearest":
            ok = far_from_ties(coords)
            np.testing.assert_array_equal(y[ok], ref[ok])
        else:
            np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5 * 200)


def test_elastic_probability_and_dtype(rng):
    xs = [rng.uniform(0, 200, (6, 7, 8)).astype(np.float32) for _ in range(40)]
    ys = voxpipe.fn.elastic(xs, p=0.5, magnitude=2.0, grid_spacing=[3], seed=9, dtype="uint8")
    key = eager_key("elastic", 9)
    changed = 0
    for i, (x, y) in enumerate(zip(xs, ys)):
        r = draw(key, i, [2**64 - 1])
        applied = bool(u01f(r[0])[0] < np.float32(0.5))
        y = np.asarray(y)
        assert y.dtype == np.uint8
        # the identity, rounded to nearest (ties to even) into uint8
        same = np.array_equal(y, np.clip(np.rint(x.astype(np.float64)), 0, 255))
        assert same == (not applied)
        changed += applied
    assert 5 < changed < 35
    x = xs[0]
    np.testing.assert_array_equal(np.asarray(voxpipe.fn.elastic(x, p=0.0, seed=3)), x)


# ---------------------------------------------------------------- random_spatial


def rs_uniform(key, sample, k):
    r = draw(key, sample, [k // 2])
    j = (k % 2) * 2
    return float(u01d(r[j], r[j + 1])[0])


def rs_matrix(key, i, args, in_shape):
    """random_spatial's documented draws, replayed."""
    u = lambda k: rs_uniform(key, i, k)  # noqa: E731
    R = np.eye(3)
    if u(0) < args["p_rotation"]:
        for ax in range(3):
            e = np.zeros(3)
            e[ax] = 1
            R = rot_fwd(e, (2 * u(1 + ax) - 1) * args["angles"][ax]) @ R
    f = np.ones(3)
    if u(4) < args["p_scale"]:
        lo, hi = args["scale"]
        f = np.array([lo + (hi - lo) * u(5 if args["isotropic"] else 5 + a) for a in range(3)])
    flip = np.array([-1.0 if u(8 + a) < args["p_flip"][a] else 1.0 for a in range(3)])
    P = np.array(args["patch"])
    cp = (P - 1) / 2
    if args.get("center"):
        centre = np.array(args["center"], float)
    else:
        K = np.maximum(1, np.array(in_shape) - (P - 1) % 2)
        k = np.minimum(K - 1, np.floor([u(12 + a) * K[a] for a in range(3)]))
        centre = k - (P - 1) // 2 + cp
    A = np.diag(flip / f) @ R.T
    return np.hstack([A, (centre - A @ cp)[:, None]]), u(11) < args["p_elastic"]


def base_args(**kw):
    a = dict(patch=[6, 7, 8], angles=[0.0, 0.0, 0.0], p_rotation=0.0, scale=[1.0, 1.0],
             isotropic=True, p_scale=0.0, p_flip=[0.0, 0.0, 0.0], p_elastic=0.0)
    a.update(kw)
    return a


def run_rs(imgs, labs, seed, **args):
    ims, lbs, mats = voxpipe.fn.random_spatial(imgs, labs, seed=seed, **args)
    return [np.asarray(v) for v in ims], [np.asarray(v) for v in lbs], [np.asarray(m) for m in mats]


def make_case(rng, shape, channels=2):
    img = rng.uniform(-100, 100, (channels,) + shape).astype(np.float32)
    lab = rng.integers(0, 4, shape).astype(np.uint8)
    return img, lab


def test_random_spatial_identity_is_a_crop(rng):
    shapes = [(10, 12, 9), (5, 20, 8), (6, 7, 8), (3, 4, 30)]
    cases = [make_case(rng, s) for s in shapes]
    args = base_args()
    seed = int(rng.integers(1, 2**40))
    ims, lbs, mats = run_rs([c[0] for c in cases], [c[1] for c in cases], seed, **args)
    key = eager_key("random_spatial", seed)
    P = np.array(args["patch"])
    for i, ((img, lab), im, lb, m) in enumerate(zip(cases, ims, lbs, mats)):
        want, _ = rs_matrix(key, i, args, lab.shape)
        np.testing.assert_array_equal(m, want)
        np.testing.assert_array_equal(m[:, :3], np.eye(3))
        start = m[:, 3].astype(int)
        assert np.all(m[:, 3] == start)
        centre = start + (P - 1) / 2
        assert np.all(centre >= -0.5) and np.all(centre <= np.array(lab.shape) - 0.5)
        pad = [(int(max(0, -s)), int(max(0, s + p - n))) for s, p, n in zip(start, P, lab.shape)]
        lp = np.pad(lab, pad)
        ip = np.pad(img, [(0, 0)] + pad)
        sl = tuple(slice(s + b[0], s + b[0] + p) for s, b, p in zip(start, pad, P))
        np.testing.assert_array_equal(lb, lp[sl])
        np.testing.assert_array_equal(im, ip[(slice(None),) + sl])
    # a given centre: the plain centred crop
    img, lab = make_case(rng, (10, 13, 12))
    c = [(n - 1) / 2 for n in lab.shape]
    ims, lbs, _ = run_rs([img], [lab], 1, **base_args(center=c))
    np.testing.assert_array_equal(lbs[0], lab[2:8, 3:10, 2:10])
    np.testing.assert_array_equal(ims[0], img[:, 2:8, 3:10, 2:10])


@pytest.mark.parametrize("what", ["rotation", "all"])
def test_random_spatial_vs_affine_transform(rng, what):
    kw = dict(angles=[40.0, 25.0, 60.0], p_rotation=1.0)
    if what == "all":
        kw.update(scale=[0.7, 1.4], isotropic=False, p_scale=1.0, p_flip=[0.5, 0.5, 0.5])
    args = base_args(patch=[9, 8, 7], **kw)
    cases = [make_case(rng, tuple(int(v) for v in rng.integers(4, 16, 3))) for _ in range(4)]
    seed = int(rng.integers(1, 2**40))
    ims, lbs, mats = run_rs([c[0] for c in cases], [c[1] for c in cases], seed, fill=-3.0,
                            label_fill=9, **args)
    key = eager_key("random_spatial", seed)
    for i, ((img, lab), im, lb, m) in enumerate(zip(cases, ims, lbs, mats)):
        want, _ = rs_matrix(key, i, args, lab.shape)
        np.testing.assert_allclose(m, want, rtol=0, atol=1e-12)
        out = tuple(args["patch"])
        for ch in range(img.shape[0]):
            ref = ndi.affine_transform(img[ch].astype(np.float64), m, output_shape=out, order=1,
                                       mode="grid-constant", cval=-3.0, prefilter=False)
            np.testing.assert_allclose(im[ch], ref, rtol=0, atol=1e-5 * 200)
        ref = ndi.affine_transform(lab, m, output_shape=out, order=0, mode="grid-constant",
                                   cval=9, prefilter=False)
        coords = np.einsum("rc,c...->r...", m[:, :3], np.indices(out, float))
        ok = far_from_ties(coords + m[:, 3].reshape(3, 1, 1, 1))
        np.testing.assert_array_equal(lb[ok], ref[ok])
        # warp_affine replays the matrix on the label
        w = voxpipe.fn.warp_affine(lab, matrix=m.ravel().tolist(), size=list(out),
                                   interp="nearest", fill=9.0)
        np.testing.assert_array_equal(lb, np.asarray(w))


def test_random_spatial_elastic_vs_map_coordinates(rng):
    args = base_args(patch=[10, 9, 11], angles=[20.0, 20.0, 20.0], p_rotation=1.0,
                     p_elastic=1.0, grid_spacing=[4.0, 3.0, 5.0], magnitude=2.0)
    cases = [make_case(rng, (12, 14, 13), channels=1) for _ in range(2)]
    labs = [c[1][None] for c in cases]  # [1, D, H, W] labels
    seed = int(rng.integers(1, 2**40))
    ims, lbs, mats = run_rs([c[0] for c in cases], labs, seed, **args)
    key = eager_key("random_spatial", seed)
    P = tuple(args["patch"])
    for i, ((img, lab), im, lb, m) in enumerate(zip(cases, ims, lbs, mats)):
        want, el = rs_matrix(key, i, args, lab.shape)
        assert el
        np.testing.assert_allclose(m, want, rtol=0, atol=1e-12)
        u = bspline_field(control_grid(key, i, P, args["grid_spacing"], 2.0, 2**32), P,
                          args["grid_spacing"])
        o = np.indices(P, float) + np.moveaxis(u, -1, 0)
        coords = np.einsum("rc,c...->r...", m[:, :3], o) + m[:, 3].reshape(3, 1, 1, 1)
        ref = ndi.map_coordinates(img[0].astype(np.float64), coords, order=1,
                                  mode="grid-constant", prefilter=False)
        np.testing.assert_allclose(im[0], ref, rtol=0, atol=1e-4 * 200)
        ref = ndi.map_coordinates(lab, coords, order=0, mode="grid-constant", prefilter=False)
        ok = far_from_ties(coords)
        assert lb.shape == (1,) + P
        np.testing.assert_array_equal(lb[0][ok], ref[ok])


def test_random_spatial_metadata_and_errors(rng):
    img, lab = make_case(rng, (8, 9, 10))
    ims, lbs, mats = voxpipe.fn.random_spatial(img, lab, patch=[4, 5, 6], p_rotation=1.0, seed=2)
    m = np.asarray(mats)
    a = np.asarray(ims.affine).reshape(4, 4)
    for o in rng.uniform(0, 4, (4, 3)):
        p = m[:, :3] @ o + m[:, 3]
        np.testing.assert_allclose(a @ np.append(o[::-1], 1), np.append(p[::-1], 1), atol=1e-9)
    np.testing.assert_allclose(np.asarray(lbs.affine), np.asarray(ims.affine))
    with pytest.raises(Exception, match="label"):
        voxpipe.fn.random_spatial(img, lab[:, :5], patch=[4, 5, 6])
    with pytest.raises(Exception, match="patch"):
        voxpipe.fn.random_spatial(img, lab, patch=[4, 5])

"""interp="label": per-label trilinear weights, then the heaviest label.

Oracle: the one-hot construction MONAI / nnU-Net use. Each class present
(plus the fill for a constant border) becomes a float64 indicator map,
interpolated with scipy.ndimage.affine_transform / map_coordinates
(order=1, prefilter=False, the mode matching the border, cval = 1 for the
fill's class and 0 for the others); the output is the argmax over classes in
ascending label order, so ties go to the smaller label.

Voxels whose two best class scores lie within TOL of each other are
near-ties, where the two sides' different (but both correct) summation
orders may round either way: there the output must be one of the tied
labels. Everywhere else it must equal the argmax exactly. Resizes by 2 and
1/2 have dyadic weights, so both sides are exact and ties are checked with
the tie rule too. Inputs are fresh random label maps (blobs and noise, label
values scattered over the dtype's range), seeded and printed by conftest."""

import numpy as np
import pytest
import scipy.ndimage as ndi

import voxpipe
from test_spatial_ops import bspline_field, control_grid, eager_key

MODES = {"constant": "grid-constant", "edge": "nearest", "reflect": "reflect"}
TOL = 1e-9
DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32]


def label_values(rng, dtype, k):
    info = np.iinfo(dtype)
    lo, hi = max(int(info.min), -(2**31)), min(int(info.max), 2**31 - 1)
    return np.sort(rng.choice(np.arange(lo, hi + 1) if hi - lo < 70000 else
                              np.unique(rng.integers(lo, hi, 4 * k)), k, replace=False))


def label_map(rng, shape, dtype, k=4):
    """Blobs (argmax of smoothed noise) or plain noise, over k label values."""
    vals = label_values(rng, dtype, k).astype(dtype)
    if rng.uniform() < 0.5:
        z = np.stack([ndi.gaussian_filter(rng.normal(size=shape), 1.5) for _ in range(k)])
        idx = np.argmax(z, axis=0)
    else:
        idx = rng.integers(0, k, shape)
    return vals[idx]


def random_map(rng, in_shape, out_shape):
    n = len(in_shape)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    s = np.diag(rng.uniform(0.5, 2.0, n)) + np.triu(rng.uniform(-0.5, 0.5, (n, n)), 1)
    a = q @ s + rng.uniform(-1e-6, 1e-6, (n, n))
    ci, co = (np.array(in_shape) - 1) / 2, (np.array(out_shape) - 1) / 2
    t = ci - a @ co + rng.uniform(-1.5, 1.5, n) + rng.uniform(0, 1e-7)
    return np.concatenate([a, t[:, None]], axis=1)


def class_scores(lab, interp_fn, fill=None):
    """Classes (ascending) and their interpolated one-hot maps; interp_fn(x, cval)."""
    classes = set(np.unique(lab).tolist())
    if fill is not None:
        classes.add(int(fill))
    classes = np.array(sorted(classes), dtype=np.int64)
    scores = np.stack([interp_fn((lab == k).astype(np.float64), float(k == fill))
                       for k in classes])
    return classes, scores


def check(got, classes, scores, tol=TOL, exact_ties=False):
    got = np.asarray(got).astype(np.int64)
    assert got.shape == scores.shape[1:]
    assert np.isin(got, classes).all(), "output holds a label absent from input and fill"
    ref = classes[np.argmax(scores, axis=0)]
    top = np.sort(scores, axis=0)
    margin = top[-1] - top[-2] if len(classes) > 1 else np.full(got.shape, np.inf)
    sure = margin > tol
    if exact_ties:
        sure |= margin == 0
    bad = sure & (got != ref)
    assert not bad.any(), (f"{bad.sum()} of {bad.size} voxels differ; first at "
                           f"{np.argwhere(bad)[0]}: got {got[bad][0]}, want {ref[bad][0]}")
    # near-ties: the output's class score is (nearly) the best
    mine = np.take_along_axis(scores, np.searchsorted(classes, got)[None], 0)[0]
    assert np.all(mine >= top[-1] - tol)
    return sure.mean()


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("border", ["constant", "edge", "reflect"])
def test_warp_affine_label_vs_onehot(rng, ndim, border):
    for _ in range(4):
        dtype = DTYPES[int(rng.integers(len(DTYPES)))]
        in_shape = tuple(int(v) for v in rng.integers(2, 14, ndim))
        out_shape = tuple(int(v) for v in rng.integers(1, 14, ndim))
        lab = label_map(rng, in_shape, dtype)
        m = random_map(rng, in_shape, out_shape)
        # the fill: a label of the map or a fresh one
        fill = int(lab.flat[0]) if rng.uniform() < 0.5 else int(label_values(rng, dtype, 1)[0])
        y = np.asarray(voxpipe.fn.warp_affine(lab, matrix=m.ravel().tolist(),
                                              size=list(out_shape), interp="label",
                                              border=border, fill=float(fill)))
        assert y.dtype == lab.dtype and y.shape == out_shape
        classes, scores = class_scores(
            lab, lambda x, cv: ndi.affine_transform(x, m, output_shape=out_shape, order=1,
                                                    mode=MODES[border], cval=cv,
                                                    prefilter=False),
            fill if border == "constant" else None)
        assert check(y, classes, scores) > 0.99


def test_warp_affine_label_channels(rng):
    """Channels are label maps of their own, resampled alike."""
    lab = np.stack([label_map(rng, (7, 8, 9), np.int16) for _ in range(3)])
    m = random_map(rng, (7, 8, 9), (6, 10, 5))
    y = np.asarray(voxpipe.fn.warp_affine(lab, matrix=m.ravel().tolist(), size=[6, 10, 5],
                                          interp="label", border="edge"))
    assert y.shape == (3, 6, 10, 5)
    for c in range(3):
        classes, scores = class_scores(
            lab[c], lambda x, cv: ndi.affine_transform(x, m, output_shape=(6, 10, 5), order=1,
                                                       mode="nearest", prefilter=False))
        check(y[c], classes, scores)


@pytest.mark.parametrize("ndim", [2, 3])
def test_identity_returns_input(rng, ndim):
    for dtype in DTYPES:
        shape = tuple(int(v) for v in rng.integers(1, 12, ndim))
        lab = label_map(rng, shape, dtype)
        eye = np.concatenate([np.eye(ndim), np.zeros((ndim, 1))], axis=1)
        for border in MODES:
            y = np.asarray(voxpipe.fn.warp_affine(lab, matrix=eye.ravel().tolist(),
                                                  interp="label", border=border, fill=3.0))
            np.testing.assert_array_equal(y, lab)
        y = np.asarray(voxpipe.fn.resize(lab, size=list(shape), interp="label"))
        np.testing.assert_array_equal(y, lab)


def zoom_ref(lab, out_shape):
    """resize's map: input = (o + 0.5) n / out - 0.5 per axis, edge border."""
    n = np.array(lab.shape, float)
    s = n / np.array(out_shape)
    m = np.concatenate([np.diag(s), (0.5 * s - 0.5)[:, None]], axis=1)
    return class_scores(lab, lambda x, cv: ndi.affine_transform(
        x, m, output_shape=out_shape, order=1, mode="nearest", prefilter=False))


@pytest.mark.parametrize("ndim", [2, 3])
def test_resize_label_up_and_down(rng, ndim):
    for _ in range(3):
        dtype = DTYPES[int(rng.integers(len(DTYPES)))]
        shape = tuple(int(v) for v in rng.integers(2, 16, ndim))
        lab = label_map(rng, shape, dtype, k=int(rng.integers(2, 6)))
        outs = [tuple(int(v) for v in rng.integers(1, 24, ndim)),  # any factors
                tuple(2 * v for v in shape),                         # dyadic up
                tuple(max(1, v // 2) if v % 2 == 0 else v for v in shape)]  # dyadic down
        for k, out in enumerate(outs):
            y = np.asarray(voxpipe.fn.resize(lab, size=list(out), interp="label"))
            assert y.dtype == lab.dtype and y.shape == out
            classes, scores = zoom_ref(lab, out)
            check(y, classes, scores, exact_ties=k > 0)
            if k > 0:  # dyadic weights: exact everywhere, ties to the smaller label
                np.testing.assert_array_equal(y, classes[np.argmax(scores, axis=0)])


def test_resize_up_two_ties_go_to_the_smaller_label():
    """Exact ties at the half-way point: [[a, b], [b, a]] shrunk to one voxel
    reads input coordinate (0 + 0.5) * 2 - 0.5 = 0.5 on every axis, so every
    corner weighs the same and both labels sum to 1/2: the smaller wins."""
    lab = np.array([[5, 2], [2, 5]], np.uint8)
    # size 1 from 2: input coordinate (0 + 0.5) * 2 - 0.5 = 0.5 on both axes:
    # each corner weighs 1/4, 5 and 2 tie at 1/2, so 2 wins
    y = np.asarray(voxpipe.fn.resize(lab, size=[1, 1], interp="label"))
    assert y.tolist() == [[2]]
    lab3 = np.array([[[7, 1], [1, 7]], [[1, 7], [7, 1]]], np.int32)
    y = np.asarray(voxpipe.fn.resize(lab3, size=[1, 1, 1], interp="label"))
    assert y.tolist() == [[[1]]]


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("border", ["constant", "edge", "reflect"])
def test_elastic_label_vs_onehot(rng, ndim, border):
    seed = int(rng.integers(1, 2**40))
    shapes = [tuple(int(v) for v in rng.integers(3, 16, ndim)) for _ in range(3)]
    labs = [label_map(rng, s, np.uint8) for s in shapes]
    spacing = [float(v) for v in rng.uniform(2, 8, ndim)]
    ys = voxpipe.fn.elastic(labs, grid_spacing=spacing, magnitude=3.0, interp="label",
                            border=border, fill=7.0, seed=seed)
    key = eager_key("elastic", seed)
    for i, (lab, y) in enumerate(zip(labs, ys)):
        shape3 = (1,) * (3 - ndim) + lab.shape
        sp3 = [1.0] * (3 - ndim) + spacing
        u = bspline_field(control_grid(key, i, shape3, sp3, 3.0), shape3, sp3)
        u = u.reshape(lab.shape + (3,))[..., 3 - ndim:]
        coords = np.indices(lab.shape, float) + np.moveaxis(u, -1, 0)
        classes, scores = class_scores(
            lab, lambda x, cv: ndi.map_coordinates(x, coords, order=1, mode=MODES[border],
                                                   cval=cv, prefilter=False),
            7 if border == "constant" else None)
        # the field is summed in another order here: near-ties within 1e-6
        assert check(np.asarray(y), classes, scores, tol=1e-6) > 0.95


def test_random_spatial_label_interp(rng):
    cases = []
    for _ in range(3):
        shape = tuple(int(v) for v in rng.integers(5, 14, 3))
        cases.append((rng.uniform(-1, 1, (1,) + shape).astype(np.float32),
                      label_map(rng, shape, np.uint8)))
    seed = int(rng.integers(1, 2**40))
    patch = [6, 7, 5]
    ims, lbs, mats = voxpipe.fn.random_spatial(
        [c[0] for c in cases], [c[1] for c in cases], seed=seed, patch=patch,
        angles=[40.0, 25.0, 60.0], p_rotation=1.0, scale=[0.7, 1.4], p_scale=1.0,
        isotropic=False, label_fill=9, label_interp="label")
    for (img, lab), lb, m in zip(cases, lbs, mats):
        m = np.asarray(m)
        classes, scores = class_scores(
            lab, lambda x, cv: ndi.affine_transform(x, m, output_shape=tuple(patch), order=1,
                                                    mode="grid-constant", cval=cv,
                                                    prefilter=False), 9)
        check(np.asarray(lb), classes, scores)


@pytest.mark.parametrize("op", ["rotate", "zoom", "resample_spacing"])
def test_other_front_ends_match_onehot_linear(rng, op):
    """The front ends without a scipy replay here: label equals argmax of the
    same op's linear interpolation of each one-hot map (linear itself is
    checked against scipy in test_spatial_ops / test_spatial_scipy)."""
    lab = label_map(rng, (9, 10, 11), np.int16)
    kw = {"rotate": dict(angle=float(rng.uniform(-80, 80)), axis=[1, 0, 0]),
          "zoom": dict(scale=[float(v) for v in rng.uniform(0.6, 1.6, 3)]),
          "resample_spacing": dict(spacing=[float(v) for v in rng.uniform(0.5, 2, 3)])}[op]
    fn = getattr(voxpipe.fn, op)

    def call(x, interp):
        return np.asarray(fn(x, **kw, interp=interp))

    y = call(lab, "label")
    classes = np.unique(lab).astype(np.int64)
    fill = 0
    if op != "resample_spacing" and fill not in classes:
        classes = np.sort(np.append(classes, fill))
    scores = np.stack([np.asarray(call((lab == k).astype(np.float64), "linear"))
                       for k in classes])
    if op != "resample_spacing":
        # the constant border's fill is the class `fill`; linear filled the
        # one-hot maps with 0, so add the outside mass to that class
        outside = np.asarray(call(np.ones(lab.shape), "linear"))
        scores[np.searchsorted(classes, fill)] += 1.0 - outside
    check(y, classes, scores)


def test_float_input_is_rejected():
    with pytest.raises(Exception) as e:
        voxpipe.fn.warp_affine(np.zeros((4, 5, 6), np.float32), matrix=np.eye(3, 4).ravel().tolist(),
                               interp="label")
    assert "warp_affine" in str(e.value) and "label" in str(e.value)
    with pytest.raises(Exception) as e:
        voxpipe.fn.resize(np.zeros((4, 5), np.float64), size=[3, 3], interp="label")
    assert "resize" in str(e.value)
    with pytest.raises(Exception) as e:
        voxpipe.fn.warp_affine(np.zeros((4, 5, 6), np.uint8), matrix=np.eye(3, 4).ravel().tolist(),
                               interp="label", fill=0.5)
    assert "fill" in str(e.value)

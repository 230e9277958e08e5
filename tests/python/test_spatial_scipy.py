"""warp_affine and resize against scipy.ndimage (and torch when importable).

warp_affine(order 0/1, border constant/edge/reflect) must equal
scipy.ndimage.affine_transform(order=0/1, mode='grid-constant'/'nearest'/
'reflect', cval=fill) on random float64 volumes, 2-D and 3-D, with random
matrices (rotation, scale, shear, translation, plus jitter so that no
coordinate falls on a nearest-rounding tie): nearest exactly, linear within
1e-9 of the value range. resize(linear) must equal scipy.ndimage.zoom(
grid_mode=True, order=1, mode='nearest') and torch's
interpolate(align_corners=False); a resized NIfTI keeps the world position
of every voxel centre (checked through nibabel)."""

import numpy as np
import pytest
import scipy.ndimage as ndi

import voxpipe

MODES = {"constant": "grid-constant", "edge": "nearest", "reflect": "reflect"}


def random_map(rng, in_shape, out_shape):
    """Output -> input index map (n x n+1): rotation @ scale/shear, about the
    centres, a random shift and jitter."""
    n = len(in_shape)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    s = np.diag(rng.uniform(0.5, 2.0, n)) + np.triu(rng.uniform(-0.5, 0.5, (n, n)), 1)
    a = q @ s + rng.uniform(-1e-6, 1e-6, (n, n))
    ci, co = (np.array(in_shape) - 1) / 2, (np.array(out_shape) - 1) / 2
    t = ci - a @ co + rng.uniform(-1.5, 1.5, n) + rng.uniform(0, 1e-7)
    return np.concatenate([a, t[:, None]], axis=1)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("interp", ["nearest", "linear"])
@pytest.mark.parametrize("border", ["constant", "edge", "reflect"])
def test_warp_affine_vs_scipy(rng, ndim, interp, border):
    for _ in range(4):
        in_shape = tuple(int(v) for v in rng.integers(1, 12, ndim))
        out_shape = tuple(int(v) for v in rng.integers(1, 12, ndim))
        x = rng.uniform(-100, 100, in_shape)
        m = random_map(rng, in_shape, out_shape)
        fill = float(rng.uniform(-50, 50))
        y = voxpipe.fn.warp_affine(x, matrix=m.ravel().tolist(), size=list(out_shape),
                                   interp=interp, border=border, fill=fill)
        ref = ndi.affine_transform(x, m, output_shape=out_shape, order=int(interp == "linear"),
                                   mode=MODES[border], cval=fill, prefilter=False)
        got = np.asarray(y)
        assert got.dtype == np.float64 and got.shape == out_shape
        if interp == "nearest":
            np.testing.assert_array_equal(got, ref)
        else:
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9 * 250)


def test_warp_affine_channels_and_dtypes(rng):
    """Channels are resampled alike; integer outputs round and saturate."""
    x = rng.uniform(-10, 300, (3, 6, 7, 8))
    m = random_map(rng, (6, 7, 8), (5, 9, 4))
    y = np.asarray(voxpipe.fn.warp_affine(x.astype(np.float32), matrix=m.ravel().tolist(),
                                          size=[5, 9, 4], border="edge", dtype="uint8"))
    assert y.dtype == np.uint8 and y.shape == (3, 5, 9, 4)
    for c in range(3):
        ref = ndi.affine_transform(x[c].astype(np.float32).astype(np.float64), m,
                                   output_shape=(5, 9, 4), order=1, mode="nearest")
        # float32 interpolation: 1e-5 of the range, then rounding
        assert np.all(np.abs(y[c] - np.clip(ref, 0, 255)) <= 0.5 + 1e-5 * 310)


def test_warp_affine_metadata(rng, tmp_path):
    """Output voxel o sits in the world where input point M o sat; spacing is
    the new affine's column lengths."""
    a_in = np.eye(4)
    a_in[:3] = rng.uniform(-2, 2, (3, 4))
    path = str(tmp_path / "v.nii")
    voxpipe.save(path, rng.uniform(size=(5, 6, 7)).astype(np.float32), affine=a_in)
    vol = voxpipe.load(path)
    m = random_map(rng, (5, 6, 7), (4, 4, 4))
    y = voxpipe.fn.warp_affine(vol, matrix=m.ravel().tolist(), size=[4, 4, 4])
    a_src = np.asarray(vol.affine).reshape(4, 4)
    a_out = np.asarray(y.affine).reshape(4, 4)
    for o in rng.uniform(0, 4, (5, 3)):
        p = m[:, :3] @ o + m[:, 3]
        w_out = a_out @ np.append(o[::-1], 1)
        w_in = a_src @ np.append(p[::-1], 1)
        np.testing.assert_allclose(w_out, w_in, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(y.spacing, np.linalg.norm(a_out[:3, :3], axis=0)[::-1],
                               rtol=1e-12)


@pytest.mark.parametrize("ndim", [2, 3])
def test_resize_vs_scipy_zoom(rng, ndim):
    for _ in range(4):
        in_shape = tuple(int(v) for v in rng.integers(1, 14, ndim))
        out_shape = tuple(int(v) for v in rng.integers(1, 14, ndim))
        x = rng.uniform(-100, 100, in_shape)
        y = np.asarray(voxpipe.fn.resize(x, size=list(out_shape)))
        zoom = [o / i for o, i in zip(out_shape, in_shape)]
        ref = ndi.zoom(x, zoom, order=1, mode="nearest", grid_mode=True, prefilter=False)
        assert ref.shape == out_shape and y.shape == out_shape
        np.testing.assert_allclose(y, ref, rtol=0, atol=1e-9 * 200)


def test_resize_vs_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.uniform(-100, 100, (2, 7, 9, 11)).astype(np.float32)
    for size in ([14, 5, 11], [3, 18, 4]):
        y = np.asarray(voxpipe.fn.resize(x, size=size))
        ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=size,
                                              mode="trilinear", align_corners=False)[0].numpy()
        np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5 * 200)


def test_resize_nifti_keeps_world_positions(rng, tmp_path):
    nib = pytest.importorskip("nibabel")
    arr = rng.uniform(0, 1000, (9, 10, 11)).astype(np.float32)  # NIfTI (i, j, k) order
    aff = np.eye(4)
    aff[:3, :3] = np.diag(rng.uniform(0.5, 2, 3)) + rng.uniform(-0.2, 0.2, (3, 3))
    aff[:3, 3] = rng.uniform(-50, 50, 3)
    src = tmp_path / "in.nii"
    nib.save(nib.Nifti1Image(arr, aff), str(src))
    vol = voxpipe.load(str(src))  # array order (k, j, i)
    assert vol.shape == (11, 10, 9)
    out_size = [6, 17, 4]
    y = voxpipe.fn.resize(vol, size=out_size)
    dst = tmp_path / "out.nii"
    voxpipe.save(str(dst), y)
    img = nib.load(str(dst))
    assert img.shape == tuple(out_size[::-1])
    r = np.array(vol.shape, float) / np.array(out_size, float)
    for _ in range(10):
        o = np.array([rng.integers(0, s) for s in out_size], float)  # array order
        p = (o + 0.5) * r - 0.5
        w_out = img.affine @ np.append(o[::-1], 1)
        w_in = aff @ np.append(p[::-1], 1)
        np.testing.assert_allclose(w_out[:3], w_in[:3], rtol=0, atol=1e-4)
    np.testing.assert_allclose(img.header.get_zooms()[:3],
                               np.linalg.norm(img.affine[:3, :3], axis=0), rtol=1e-5)
    np.testing.assert_allclose(y.spacing, np.array(vol.spacing) * r, rtol=1e-9)


def test_resize_modes_and_errors(rng):
    x = rng.uniform(size=(10, 20, 40)).astype(np.float32)
    assert voxpipe.fn.resize(x, size=[5, 5, 5], mode="not_larger").shape == (1, 3, 5)
    assert voxpipe.fn.resize(x, size=[5, 5, 5], mode="not_smaller").shape == (5, 10, 20)
    assert voxpipe.fn.resize(x, scale=[2.0]).shape == (20, 40, 80)
    with pytest.raises(Exception, match="not both"):
        voxpipe.fn.resize(x, scale=[2.0], size=[1, 2, 3])


@pytest.mark.parametrize("border", ["constant", "edge", "reflect"])
def test_float32_linear_fast_path_matches_general_path(rng, border):
    """float32 -> float32 linear takes a row fast path on the CPU; its bits must
    be those of the general path (float32 -> float64 output, rounded back)."""
    for _ in range(3):
        in_shape = tuple(int(v) for v in rng.integers(1, 20, 3))
        out_shape = tuple(int(v) for v in rng.integers(1, 20, 3))
        x = rng.uniform(-100, 100, (2,) + in_shape).astype(np.float32)
        x[0, 0, 0, 0] = np.inf
        m = random_map(rng, in_shape, out_shape)
        m[:, 3] = np.round(m[:, 3])  # some coordinates on voxel centres: zero weights
        args = dict(matrix=m.ravel().tolist(), size=list(out_shape), border=border, fill=2.5)
        fast = np.asarray(voxpipe.fn.warp_affine(x, **args))
        general = np.asarray(voxpipe.fn.warp_affine(x, dtype="float64", **args)).astype(np.float32)
        assert fast.dtype == np.float32
        np.testing.assert_array_equal(fast.view(np.uint32), general.view(np.uint32))
    y = rng.uniform(-1, 1, (7, 9, 11)).astype(np.float32)
    fast = np.asarray(voxpipe.fn.resize(y, size=[13, 4, 20]))
    general = np.asarray(voxpipe.fn.resize(y, size=[13, 4, 20], dtype="float64")).astype(np.float32)
    np.testing.assert_array_equal(fast.view(np.uint32), general.view(np.uint32))

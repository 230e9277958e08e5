"""pad, crop_or_pad, transpose and resample_spacing against NumPy / SciPy.

pad must equal numpy.pad (constant / edge / symmetric: scipy's half-sample
'reflect' is numpy's 'symmetric') exactly, for every dtype, 1-D to 4-D, with
widths larger than the axis (the mirror repeats); its centred forms split
the extra voxels floor/ceil (the odd voxel after, as MONAI's SpatialPad).
crop_or_pad must equal a NumPy reference of MONAI's ResizeWithPadOrCrop
(CenterSpatialCrop: start n//2 - t//2, then SpatialPad). transpose must
equal numpy.transpose. resample_spacing must equal scipy.ndimage.zoom(
grid_mode=True, mode='nearest') to the extent round(n * spacing / target)
(half to even, as nnU-Net's round). Metadata: every voxel keeps its world
position (checked through nibabel for files written by voxpipe.save)."""

import itertools

import numpy as np
import pytest
import scipy.ndimage as ndi

import voxpipe

NP_MODE = {"constant": "constant", "edge": "edge", "reflect": "symmetric"}
DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64, np.float16,
          np.float32, np.float64]


def random_array(rng, shape, dtype):
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        lo, hi = max(int(info.min), -(2**40)), min(int(info.max), 2**40)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    return rng.uniform(-1000, 1000, shape).astype(dtype)


def spatial_widths(ndim, sp):
    """numpy.pad widths for an array whose last len(sp) axes are spatial."""
    return [(0, 0)] * (ndim - len(sp)) + [tuple(int(v) for v in w) for w in sp]


def nifti_volume(rng, tmp_path, shape, name="in.nii"):
    """A volume written with a random affine and read back (array order)."""
    aff = np.eye(4)
    aff[:3, :3] = np.diag(rng.uniform(0.5, 2, 3)) + rng.uniform(-0.3, 0.3, (3, 3))
    aff[:3, 3] = rng.uniform(-50, 50, 3)
    path = str(tmp_path / name)
    voxpipe.save(path, rng.uniform(0, 100, shape).astype(np.float32), affine=aff)
    return voxpipe.load(path)


def world(tensor_or_affine, idx):
    """World position of array index idx (spatial axes, array order)."""
    a = np.asarray(getattr(tensor_or_affine, "affine", tensor_or_affine)).reshape(4, 4)
    return (a @ np.append(np.asarray(idx, float)[::-1], 1))[:3]


# ---------------------------------------------------------------- pad


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pad_widths_vs_numpy(rng, mode, dtype):
    for ndim in (1, 2, 3, 4):
        shape = tuple(int(v) for v in rng.integers(1, 7, ndim))
        x = random_array(rng, shape, dtype)
        sn = min(ndim, 3)
        before = [int(v) for v in rng.integers(0, 9, sn)]  # often wider than the axis
        after = [int(v) for v in rng.integers(0, 9, sn)]
        fill = int(rng.integers(-5, 100)) if np.issubdtype(dtype, np.integer) else 2.5
        if np.issubdtype(dtype, np.unsignedinteger):
            fill = abs(fill)
        y = np.asarray(voxpipe.fn.pad(x, before=before, after=after, mode=mode, fill=fill))
        kw = {"constant_values": fill} if mode == "constant" else {}
        ref = np.pad(x, spatial_widths(ndim, list(zip(before, after))), mode=NP_MODE[mode], **kw)
        assert y.dtype == ref.dtype and y.shape == ref.shape, (shape, before, after)
        np.testing.assert_array_equal(y, ref)


def test_pad_one_value_for_all_and_only_before(rng):
    x = rng.uniform(size=(2, 3, 4, 5))
    y = np.asarray(voxpipe.fn.pad(x, before=[2], mode="edge"))
    np.testing.assert_array_equal(y, np.pad(x, [(0, 0)] + [(2, 0)] * 3, mode="edge"))
    y = np.asarray(voxpipe.fn.pad(x, after=[1, 0, 3]))
    np.testing.assert_array_equal(y, np.pad(x, [(0, 0), (0, 1), (0, 0), (0, 3)]))


def centred(n, target):
    extra = max(target - n, 0)
    return extra // 2, extra - extra // 2  # the odd voxel after


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_pad_shape_and_multiple_of(rng, mode):
    for _ in range(6):
        shape = tuple(int(v) for v in rng.integers(1, 12, 3))
        x = rng.uniform(-10, 10, (2,) + shape).astype(np.float32)
        target = [int(v) for v in rng.integers(0, 16, 3)]
        y = np.asarray(voxpipe.fn.pad(x, shape=target, mode=mode, fill=-1))
        widths = [centred(n, t) for n, t in zip(shape, target)]
        kw = {"constant_values": -1} if mode == "constant" else {}
        np.testing.assert_array_equal(y, np.pad(x, spatial_widths(4, widths), NP_MODE[mode], **kw))
        k = [int(v) for v in rng.integers(1, 9, 3)]
        y = np.asarray(voxpipe.fn.pad(x, multiple_of=k, mode=mode, fill=-1))
        widths = [centred(n, -(-n // m) * m) for n, m in zip(shape, k)]
        assert all(s % m == 0 for s, m in zip(y.shape[1:], k))
        np.testing.assert_array_equal(y, np.pad(x, spatial_widths(4, widths), NP_MODE[mode], **kw))
    # the odd voxel goes after: 3 -> 6 pads 1 in front, 2 behind
    y = np.asarray(voxpipe.fn.pad(np.arange(3.0), shape=[6], fill=9))
    np.testing.assert_array_equal(y, [9, 0, 1, 2, 9, 9])


def test_pad_per_sample_batch(rng):
    xs = [rng.uniform(size=s).astype(np.float32) for s in [(3, 4, 5), (6, 2, 1), (1, 1, 7)]]
    before = [[1, 0, 2], [0, 3, 0], [4, 4, 0]]
    ys = voxpipe.fn.pad(xs, before={"per_sample": before}, after=[1], mode="reflect")
    for x, y, b in zip(xs, ys, before):
        ref = np.pad(x, [(v, 1) for v in b], mode="symmetric")
        np.testing.assert_array_equal(np.asarray(y), ref)


def test_pad_keeps_world_positions(rng, tmp_path):
    nib = pytest.importorskip("nibabel")
    vol = nifti_volume(rng, tmp_path, (5, 6, 7))
    before, after = [2, 0, 3], [1, 4, 0]
    y = voxpipe.fn.pad(vol, before=before, after=after, mode="edge")
    assert y.shape == (8, 10, 10)
    np.testing.assert_allclose(y.spacing, vol.spacing, rtol=1e-12)
    dst = str(tmp_path / "out.nii")
    voxpipe.save(dst, y)
    img = nib.load(dst)
    for _ in range(10):
        o = np.array([rng.integers(0, s) for s in y.shape])
        np.testing.assert_allclose(world(img.affine, o), world(vol, o - before), atol=1e-4)
    np.testing.assert_array_equal(
        np.asarray(img.dataobj).transpose(2, 1, 0),
        np.pad(np.asarray(vol), list(zip(before, after)), mode="edge"))


def test_pad_errors(rng):
    x = rng.uniform(size=(4, 5, 6))
    with pytest.raises(Exception, match="one of before/after, shape and multiple_of"):
        voxpipe.fn.pad(x)
    with pytest.raises(Exception, match="more than one"):
        voxpipe.fn.pad(x, before=[1], shape=[8, 8, 8])
    with pytest.raises(Exception, match="'shape' has 2 values"):
        voxpipe.fn.pad(x, shape=[8, 8])
    with pytest.raises(Exception, match="multiple_of"):
        voxpipe.fn.pad(x, multiple_of=[0])
    with pytest.raises(Exception, match="constant border"):
        voxpipe.fn.pad(np.zeros((0, 3)), before=[1], mode="edge")


# ---------------------------------------------------------------- crop_or_pad


def ref_crop_or_pad(x, target, mode, fill):
    """MONAI's ResizeWithPadOrCrop on the last len(target) axes: a centred
    crop (start n//2 - t//2) where larger, a centred pad where smaller."""
    lead = x.ndim - len(target)
    sl = [slice(None)] * lead
    for n, t in zip(x.shape[lead:], target):
        s = n // 2 - t // 2 if n > t else 0
        sl.append(slice(s, s + min(n, t)))
    y = x[tuple(sl)]
    widths = [(0, 0)] * lead + [centred(n, t) for n, t in zip(y.shape[lead:], target)]
    kw = {"constant_values": fill} if mode == "constant" else {}
    return np.pad(y, widths, mode=NP_MODE[mode], **kw)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_crop_or_pad_vs_reference(rng, mode, dtype):
    for ndim in (2, 3, 4):
        for _ in range(3):
            shape = tuple(int(v) for v in rng.integers(1, 12, ndim))
            x = random_array(rng, shape, dtype)
            sn = min(ndim, 3)
            target = [int(v) for v in rng.integers(1, 14, sn)]
            y = np.asarray(voxpipe.fn.crop_or_pad(x, shape=target, mode=mode, fill=7))
            ref = ref_crop_or_pad(x, target, mode, 7)
            assert y.shape == ref.shape
            np.testing.assert_array_equal(y, ref)
    # 0 keeps an axis; odd/even centring of the crop
    x = np.arange(4.0)
    np.testing.assert_array_equal(np.asarray(voxpipe.fn.crop_or_pad(x, shape=[1])), [2])
    np.testing.assert_array_equal(np.asarray(voxpipe.fn.crop_or_pad(np.arange(5.0), shape=[2])),
                                  [1, 2])
    assert voxpipe.fn.crop_or_pad(np.zeros((3, 4, 5)), shape=[0, 2, 9]).shape == (3, 2, 9)


def test_crop_or_pad_batch_and_world(rng, tmp_path):
    xs = [rng.uniform(size=s) for s in [(9, 4, 6), (3, 12, 7)]]
    targets = [[5, 6, 6], [8, 8, 2]]
    ys = voxpipe.fn.crop_or_pad(xs, shape={"per_sample": targets}, mode="reflect")
    for x, y, t in zip(xs, ys, targets):
        np.testing.assert_array_equal(np.asarray(y), ref_crop_or_pad(x, t, "reflect", 0))
    vol = nifti_volume(rng, tmp_path, (9, 4, 6))
    y = voxpipe.fn.crop_or_pad(vol, shape=[5, 7, 6])
    start = np.array([9 // 2 - 5 // 2, -((7 - 4) // 2), 0])
    for o in itertools.product(range(5), range(7), range(6)):
        np.testing.assert_allclose(world(y, o), world(vol, np.array(o) + start), atol=1e-9)


# ---------------------------------------------------------------- transpose


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float16, np.float32, np.int64,
                                   np.float64])
def test_transpose_vs_numpy(rng, dtype):
    for ndim in (1, 2, 3, 4, 5):
        shape = tuple(int(v) for v in rng.integers(1, 6, ndim))
        x = random_array(rng, shape, dtype)
        for perm in itertools.permutations(range(ndim)):
            y = np.asarray(voxpipe.fn.transpose(x, perm=list(perm)))
            np.testing.assert_array_equal(y, np.transpose(x, perm))
        lead = ndim - min(ndim, 3)
        for perm in itertools.permutations(range(ndim - lead)):
            y = np.asarray(voxpipe.fn.transpose(x, perm=list(perm), spatial_only=True))
            full = list(range(lead)) + [lead + p for p in perm]
            np.testing.assert_array_equal(y, np.transpose(x, full))


def test_transpose_batch_of_mixed_shapes(rng):
    xs = [rng.uniform(size=s).astype(np.float32) for s in [(2, 3, 4, 5), (1, 7, 1, 3), (3, 2, 9, 2)]]
    perms = [[2, 0, 1], [0, 2, 1], [1, 2, 0]]
    ys = voxpipe.fn.transpose(xs, perm={"per_sample": perms}, spatial_only=True)
    for x, y, p in zip(xs, ys, perms):
        np.testing.assert_array_equal(np.asarray(y), np.transpose(x, [0] + [1 + v for v in p]))


def test_transpose_keeps_world_positions(rng, tmp_path):
    nib = pytest.importorskip("nibabel")
    vol = nifti_volume(rng, tmp_path, (4, 5, 6))
    for perm in itertools.permutations(range(3)):
        y = voxpipe.fn.transpose(vol, perm=list(perm))
        np.testing.assert_array_equal(np.asarray(y), np.transpose(np.asarray(vol), perm))
        np.testing.assert_allclose(y.spacing, np.array(vol.spacing)[list(perm)], rtol=1e-12)
        dst = str(tmp_path / "t.nii")
        voxpipe.save(dst, y)
        img = nib.load(dst)
        for _ in range(6):
            o = np.array([rng.integers(0, s) for s in y.shape])
            i = np.empty(3, int)
            i[list(perm)] = o  # output index o is input index o[inverse perm]
            np.testing.assert_allclose(world(img.affine, o), world(vol, i), atol=1e-4)
        np.testing.assert_allclose(img.header.get_zooms()[:3], np.array(y.spacing)[::-1],
                                   rtol=1e-6)


def test_transpose_errors(rng, tmp_path):
    x = rng.uniform(size=(2, 3, 4, 5))
    with pytest.raises(Exception, match="'perm' has 3 values"):
        voxpipe.fn.transpose(x, perm=[2, 1, 0])
    with pytest.raises(Exception, match="not a permutation"):
        voxpipe.fn.transpose(x, perm=[0, 1, 1], spatial_only=True)
    # a channel axis moved among the spatial axes: fine without metadata ...
    assert voxpipe.fn.transpose(x, perm=[3, 0, 1, 2]).shape == (5, 2, 3, 4)
    # ... refused when the spacing and affine would lose their meaning
    vol = nifti_volume(rng, tmp_path, (2, 3, 4, 5))
    with pytest.raises(Exception, match="non-spatial axis"):
        voxpipe.fn.transpose(vol, perm=[3, 0, 1, 2])


# ---------------------------------------------------------------- resample_spacing


def nnunet_shape(shape, spacing, target):
    return [int(round(s / t * n)) for n, s, t in zip(shape, spacing, target)]


def nearest_with_ties(got, ref, x):
    """got must equal scipy's ref except where an axis' coordinate (o + 0.5) n / out - 0.5
    lies on a rounding tie (k + 0.5: common with round spacings), where either neighbour is
    as near and float rounding decides (voxpipe evaluates resize's matrix, r o + (r/2 - 1/2),
    scipy (o + 0.5) r - 0.5): there got must be one of the two neighbours' values."""
    lo, hi, tie = [], [], []
    for n, m in zip(x.shape, got.shape):
        c = (np.arange(m) + 0.5) * (n / m) - 0.5 + 0.5
        lo.append(np.clip(np.floor(c - 1e-9).astype(int), 0, n - 1))
        hi.append(np.clip(np.floor(c + 1e-9).astype(int), 0, n - 1))
        tie.append(lo[-1] != hi[-1])
    clean = ~np.logical_or.outer(np.logical_or.outer(tie[0], tie[1]), tie[2])
    np.testing.assert_array_equal(got[clean], ref[clean])
    ok = np.zeros(got.shape, bool)
    for pick in itertools.product([lo, hi], repeat=3):
        ok |= got == x[np.ix_(pick[0][0], pick[1][1], pick[2][2])]
    assert ok.all(), np.argwhere(~ok)[:5]


@pytest.mark.parametrize("interp", ["nearest", "linear"])
def test_resample_spacing_vs_scipy_zoom(rng, tmp_path, interp):
    order = int(interp == "linear")
    for k in range(5):
        shape = tuple(int(v) for v in rng.integers(2, 14, 3))
        # round spacings (ties in the extent are common) and random ones
        spacing = rng.choice([0.5, 1.0, 1.5, 2.0, 2.5], 3) if k % 2 else rng.uniform(0.4, 3, 3)
        target = rng.choice([0.5, 1.0, 2.0, 3.0], 3) if k % 2 else rng.uniform(0.4, 3, 3)
        x = rng.uniform(-100, 100, shape)
        voxpipe.save(str(tmp_path / f"s{k}.nii"), x, spacing=list(spacing))
        vol = voxpipe.load(str(tmp_path / f"s{k}.nii"))
        np.testing.assert_allclose(vol.spacing, spacing, rtol=1e-6)
        sp_in = np.array(vol.spacing, float)
        y = voxpipe.fn.resample_spacing(vol, spacing=list(target), interp=interp)
        out = nnunet_shape(shape, sp_in, target)
        assert y.shape == tuple(max(v, 1) for v in out)
        zoom = [o / n for o, n in zip(y.shape, shape)]
        ref = ndi.zoom(np.asarray(vol).astype(np.float64), zoom, order=order, mode="nearest",
                       grid_mode=True, prefilter=False)
        assert ref.shape == y.shape
        got = np.asarray(y)
        if order:
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4 * 200)  # float32 data
        else:
            nearest_with_ties(got, ref, np.asarray(vol))
        np.testing.assert_allclose(y.spacing, target, rtol=1e-12)


def test_resample_spacing_keeps_extent_and_position(rng, tmp_path):
    nib = pytest.importorskip("nibabel")
    arr = rng.uniform(0, 1000, (9, 10, 11)).astype(np.float32)  # NIfTI (i, j, k) order
    aff = np.eye(4)
    aff[:3, :3] = np.diag(rng.uniform(0.5, 2, 3)) + rng.uniform(-0.2, 0.2, (3, 3))
    aff[:3, 3] = rng.uniform(-50, 50, 3)
    src = str(tmp_path / "in.nii")
    nib.save(nib.Nifti1Image(arr, aff), src)
    vol = voxpipe.load(src)  # array order (k, j, i)
    sp_in = np.linalg.norm(aff[:3, :3], axis=0)[::-1]
    np.testing.assert_allclose(vol.spacing, sp_in, rtol=1e-5)
    target = rng.uniform(0.6, 1.8, 3)
    y = voxpipe.fn.resample_spacing(vol, spacing=list(target), interp="nearest")
    out = np.array(nnunet_shape(vol.shape, vol.spacing, target))
    assert y.shape == tuple(out)
    dst = str(tmp_path / "out.nii")
    voxpipe.save(dst, y)
    img = nib.load(dst)
    r = np.array(vol.shape, float) / out
    for _ in range(10):  # voxel centres placed as resize places them
        o = np.array([rng.integers(0, s) for s in out], float)
        np.testing.assert_allclose(world(img.affine, o), world(aff, (o + 0.5) * r - 0.5),
                                   atol=1e-4)
    # the volume's box (outer corners of the corner voxels) stays
    for corner in itertools.product([0, 1], repeat=3):
        c = np.array(corner, float)
        np.testing.assert_allclose(world(img.affine, c * out - 0.5),
                                   world(aff, c * np.array(vol.shape) - 0.5), atol=1e-4)
    np.testing.assert_allclose(y.spacing, target, rtol=1e-12)
    # the column lengths differ from the target by the rounding of the extent only
    cols = np.linalg.norm(img.affine[:3, :3], axis=0)[::-1]
    np.testing.assert_allclose(cols, sp_in * r, rtol=1e-5)
    assert np.all(np.abs(cols * out - target * out) <= 0.5 * target + 1e-4)


def test_resample_spacing_channels_and_errors(rng):
    x = rng.uniform(size=(2, 6, 8, 10)).astype(np.float32)  # spacing 1
    y = voxpipe.fn.resample_spacing(x, spacing=[2.0], interp="linear")
    assert y.shape == (2, 3, 4, 5)  # 6/2 = 3, 8/2 = 4, 10/2 = 5
    for c in range(2):
        ref = ndi.zoom(x[c], [0.5] * 3, order=1, mode="nearest", grid_mode=True, prefilter=False)
        np.testing.assert_allclose(np.asarray(y)[c], ref, rtol=0, atol=1e-5)
    # half to even: 5 voxels of 1 to 2 -> 2.5 -> 2; 7 -> 3.5 -> 4
    assert voxpipe.fn.resample_spacing(np.zeros((5, 7)), spacing=[2.0]).shape == (2, 4)
    with pytest.raises(Exception, match="'spacing' has 2 values"):
        voxpipe.fn.resample_spacing(x, spacing=[1.0, 2.0])

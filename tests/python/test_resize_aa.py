"""resize's antialiasing and region of interest.

Oracles: a float64 NumPy transcription of the separable filter (triangle of
width r = in/out per shrinking axis, taps outside the input left out and
the weights renormalised: torch's and PIL's antialiased resize), block means
for the area filter at integer factors (torch's 'area' / adaptive average
pooling), torch's interpolate(antialias=True) in 2-D where torch is
importable, and scipy.ndimage.zoom / the plain resize for regions.
Tolerance: 1e-9 of the data's range (the engine sums in double)."""

import numpy as np
import pytest
import scipy.ndimage as ndi

import voxpipe


def aa_weights(n_in, n_out, lo=0.0, hi=None, area=False):
    hi = float(n_in) if hi is None else hi
    r = (hi - lo) / n_out
    s = max(abs(r), 1.0)
    w = np.zeros((n_out, n_in))
    for o in range(n_out):
        x = lo + (o + 0.5) * r - 0.5
        for i in range(n_in):
            d = i - x
            if area and abs(r) > 1:
                w[o, i] = max(0.0, min(d + 0.5, s / 2) - max(d - 0.5, -s / 2))
            else:
                w[o, i] = max(0.0, 1 - abs(d) / s)
        if w[o].sum() == 0:
            w[o, 0 if x < 0 else n_in - 1] = 1
        w[o] /= w[o].sum()
    return w


def separable(x, mats):
    y = x
    for a, m in enumerate(mats):
        y = np.moveaxis(np.tensordot(m, np.moveaxis(y, a, 0), axes=(1, 0)), 0, a)
    return y


@pytest.mark.parametrize("filt", ["triangle", "area"])
def test_antialias_vs_numpy(rng, filt):
    for _ in range(5):
        in_shape = tuple(int(v) for v in rng.integers(2, 30, 3))
        out_shape = tuple(int(v) for v in rng.integers(1, 20, 3))
        x = rng.uniform(-100, 100, in_shape)
        y = np.asarray(voxpipe.fn.resize(x, size=list(out_shape), antialias=filt))
        ref = separable(x, [aa_weights(i, o, area=filt == "area")
                            for i, o in zip(in_shape, out_shape)])
        np.testing.assert_allclose(y, ref, rtol=0, atol=1e-9 * 200)


def test_area_integer_factor_is_block_mean(rng):
    x = rng.uniform(-100, 100, (2, 12, 18, 9))
    y = np.asarray(voxpipe.fn.resize(x, size=[4, 6, 3], antialias="area"))
    ref = x.reshape(2, 4, 3, 6, 3, 3, 3).mean(axis=(2, 4, 6))
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-9 * 200)


def test_antialias_upscale_is_plain_linear(rng):
    x = rng.uniform(-100, 100, (5, 6, 7))
    a = np.asarray(voxpipe.fn.resize(x, size=[9, 12, 8], antialias="triangle"))
    b = np.asarray(voxpipe.fn.resize(x, size=[9, 12, 8]))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 * 200)


def test_antialias_vs_torch_2d(rng):
    torch = pytest.importorskip("torch")
    x = rng.uniform(-100, 100, (3, 61, 47)).astype(np.float32)
    for size in ([20, 13], [7, 40], [61, 5]):
        y = np.stack([np.asarray(voxpipe.fn.resize(c, size=size, antialias="triangle"))
                      for c in x])
        ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=size,
                                              mode="bilinear", align_corners=False,
                                              antialias=True)[0].numpy()
        np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5 * 200)


def test_antialias_needs_linear():
    with pytest.raises(Exception, match="antialias"):
        voxpipe.fn.resize(np.zeros((4, 4, 4)), size=[2, 2, 2], interp="nearest",
                          antialias="area")


def test_roi(rng):
    x = rng.uniform(-100, 100, (10, 12, 14))
    # a whole-voxel region resized to its own extent is a crop
    y = np.asarray(voxpipe.fn.resize(x, size=[4, 5, 6], roi_start=[2, 3, 4], roi_end=[6, 8, 10]))
    np.testing.assert_allclose(y, x[2:6, 3:8, 4:10], rtol=0, atol=1e-9 * 200)
    # a reversed region flips
    y = np.asarray(voxpipe.fn.resize(x, size=[10, 12, 14], roi_start=[10, 0, 0],
                                     roi_end=[0, 12, 14]))
    np.testing.assert_allclose(y, x[::-1], rtol=0, atol=1e-9 * 200)
    # a region scaled up equals zoom of the crop (grid_mode)
    y = np.asarray(voxpipe.fn.resize(x, scale=[2.0], roi_start=[2, 2, 2], roi_end=[7, 9, 11]))
    ref = ndi.zoom(x[2:7, 2:9, 2:11], 2.0, order=1, mode="nearest", grid_mode=True)
    assert y.shape == ref.shape == (10, 14, 18)
    # inside the crop the neighbours are the same; at its faces the region's
    # outside voxels take part (it is a view of the whole input), so compare
    # the interior
    np.testing.assert_allclose(y[1:-1, 1:-1, 1:-1], ref[1:-1, 1:-1, 1:-1], rtol=0, atol=1e-9 * 200)

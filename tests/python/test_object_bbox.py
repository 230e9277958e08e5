"""random_object_bbox and random_crop_window (CPU) against scipy.ndimage oracles and
chi-square tests of their distributions. A batch of N copies of one volume draws N
independent samples (each sample index has its own Philox stream), so one call gives
the statistics. Tests fail at the 1e-4 level for a correct implementation."""
import os

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.stats as st

import voxpipe

SEED = int(os.environ.get("VP_TEST_SEED", np.random.SeedSequence().entropy % (1 << 32)))
print("VP_TEST_SEED", SEED)
ALPHA = 1e-4
FN = voxpipe.fn


def bbox(n=400, vol=None, **kw):
    out = FN.random_object_bbox([vol] * n, seed=SEED, **kw)
    boxes, classes = out
    return np.array([np.asarray(b) for b in boxes]), [np.asarray(c) for c in classes]


def components(vol, value, connectivity=1):
    """Boxes (lo, hi) of the components of vol == value, by scipy."""
    st_ = ndi.generate_binary_structure(vol.ndim, connectivity)
    lab, n = ndi.label(vol == value, structure=st_)
    return [tuple([s.start for s in sl] + [s.stop for s in sl]) for sl in ndi.find_objects(lab)]


def blobs_volume(rng):
    """Class 1: five blobs of very different sizes; class 2: two blobs."""
    v = np.zeros((24, 26, 28), np.uint8)
    v[1, 1, 1] = 1
    v[3:5, 3:5, 3:5] = 1
    v[8:20, 2:14, 2:16] = 1
    v[2:4, 20:24, 20:27] = 1
    v[21:23, 20:25, 3:5] = 1
    v[14:18, 18:22, 18:22] = 2
    v[20:23, 2:6, 20:26] = 2
    return v


def chi2_uniform(counts):
    counts = np.asarray(counts, float)
    return st.chisquare(counts).pvalue


def test_boxes_are_components_and_uniform():
    rng = np.random.default_rng(SEED)
    v = blobs_volume(rng)
    boxes, _ = bbox(3000, v, classes=[1], format="start_end")
    comps = components(v, 1)
    assert len(comps) == 5
    idx = [comps.index(tuple(b)) for b in boxes]  # raises if a box is no component
    assert chi2_uniform(np.bincount(idx, minlength=5)) > ALPHA


def test_class_weights_and_retry():
    v = blobs_volume(None)
    boxes, cls = bbox(4000, v, classes=[1, 2, 3], class_weights=[1, 3, 5], output_class=True)
    c = np.array([int(x) for x in cls])
    assert set(c) <= {1, 2}  # class 3 is absent: weight 0
    n1, n2 = (c == 1).sum(), (c == 2).sum()
    assert st.binomtest(n1, n1 + n2, 0.25).pvalue > ALPHA


def test_foreground_prob_and_formats():
    v = blobs_volume(None)
    shape = list(v.shape)
    for fmt in ["anchor_shape", "start_end", "box"]:
        boxes, cls = bbox(3000, v, foreground_prob=0.3, format=fmt, output_class=True)
        whole = [0, 0, 0] + (shape if fmt == "anchor_shape" else shape)
        is_whole = np.all(boxes == np.array(whole), axis=1)
        assert st.binomtest(int((~is_whole).sum()), len(boxes), 0.3).pvalue > ALPHA
        assert all(int(c) == 0 for c, w in zip(cls, is_whole) if w)
        obj = boxes[~is_whole]
        comps = set(components(v, 1) + components(v, 2))
        for b in obj[:50]:
            se = tuple(b) if fmt != "anchor_shape" else tuple(list(b[:3]) + list(b[:3] + b[3:]))
            assert se in comps
    _, cls = bbox(4, v)  # output_class false: empty
    assert all(c.size == 0 for c in cls)


def test_k_largest_by_box_volume():
    v = np.zeros((20, 20, 20), np.uint8)
    # a staircase: few voxels, large box (6-connected)
    for k in range(12):
        v[k, k, k] = 1
        v[k, k, k + 1] = 1
        v[k, k + 1, k + 1] = 1
    v[15:19, 2:6, 14:18] = 1  # 64 voxels, box 64
    v[2:5, 14:18, 1:4] = 1  # 36 voxels, box 36
    v[17, 17, 2] = 1  # one voxel
    comps = components(v, 1)
    vols = [np.prod(np.subtract(c[3:], c[:3])) for c in comps]
    top2 = {comps[i] for i in np.argsort(vols)[-2:]}
    boxes, _ = bbox(2000, v, k_largest=2, format="start_end")
    got = [tuple(b) for b in boxes]
    assert set(got) == top2
    assert chi2_uniform([got.count(t) for t in top2]) > ALPHA


def test_threshold_and_fallbacks():
    v = blobs_volume(None)
    boxes, cls = bbox(1000, v, threshold=[3, 4, 4], format="start_end", output_class=True)
    ext = boxes[:, 3:] - boxes[:, :3]
    assert np.all(ext >= [3, 4, 4])
    # class 1 has no blob this large: always class 2... or the whole volume if none
    boxes, cls = bbox(300, v, classes=[1], threshold=[13], format="start_end", output_class=True)
    assert np.all(boxes == [0, 0, 0] + list(v.shape)) and all(int(c) == 0 for c in cls)
    v[8:20, 2:14, 2:16] = 0  # class 1 keeps only small blobs
    boxes, cls = bbox(300, v, threshold=[3, 4, 4], classes=[1, 2], class_weights=[100, 1],
                      format="start_end", output_class=True)
    assert all(int(c) == 2 for c in cls)  # class 1 has no survivor: retried with class 2


def test_ignore_class_uniform_over_all():
    v = blobs_volume(None)
    comps = components(v, 1) + components(v, 2)
    boxes, cls = bbox(4000, v, ignore_class=True, format="start_end", output_class=True)
    idx = [comps.index(tuple(b)) for b in boxes]
    assert chi2_uniform(np.bincount(idx, minlength=len(comps))) > ALPHA


def test_random_volume_matches_scipy_and_2d():
    rng = np.random.default_rng(SEED + 5)
    v = (rng.random((9, 11, 13)) < 0.3).astype(np.int16) * rng.integers(1, 4, (9, 11, 13))
    for conn, sconn in [(6, 1), (18, 2), (26, 3)]:
        boxes, cls = bbox(200, v, connectivity=conn, format="start_end", output_class=True)
        for b, c in zip(boxes, cls):
            assert tuple(b) in components(v, int(c), sconn)
    v2 = (rng.random((15, 17)) < 0.4).astype(np.uint8)
    boxes, _ = bbox(100, v2, connectivity=8, format="start_end")
    assert boxes.shape == (100, 4)
    for b in boxes:
        assert tuple(b) in components(v2, 1, 2)


def test_cache_gives_the_same_boxes():
    v = blobs_volume(None)
    a, _ = bbox(50, v, format="box")
    b, _ = bbox(50, v, format="box", cache_bytes=1 << 20)
    c, _ = bbox(50, v, format="box", cache_bytes=1 << 20)  # hits
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


# ---- random_crop_window ------------------------------------------------------


def window(n, vol, **kw):
    a, s, c = FN.random_crop_window([vol] * n, seed=SEED, **kw)
    return np.array([np.asarray(x) for x in a]), np.array([np.asarray(x) for x in s])


def test_roi_windows_contain_or_lie_inside():
    rng = np.random.default_rng(SEED + 1)
    v = np.zeros((40, 50, 60), np.uint8)
    for _ in range(30):
        lo = rng.integers(0, [40, 50, 60])
        hi = lo + rng.integers(1, 30, 3)
        hi = np.minimum(hi, [40, 50, 60])
        crop = rng.integers(1, 40, 3)
        a, s = window(20, v, mode="roi", crop_shape=crop.tolist(), roi=lo.tolist() + hi.tolist())
        np.testing.assert_array_equal(s, np.tile(crop, (20, 1)))
        for ax in range(3):
            n, c, l, h = [40, 50, 60][ax], crop[ax], lo[ax], hi[ax]
            x = a[:, ax]
            if c <= n:
                assert np.all((x >= 0) & (x <= n - c))
                if h - l <= c:  # contains, unless clamping forbids
                    ok = (x <= l) & (x + c >= h)
                    assert np.all(ok | (x == 0) | (x == n - c))
                else:
                    assert np.all((x >= l) & (x + c <= h))


def test_roi_uniform_start():
    v = np.zeros((1, 1, 100), np.uint8)
    a, _ = window(6000, v, mode="roi", crop_shape=[1, 1, 20], roi=[0, 0, 40, 1, 1, 50])
    x = a[:, 2]
    assert x.min() >= 30 and x.max() <= 40
    assert chi2_uniform(np.bincount(x - 30, minlength=11)) > ALPHA


def test_mask_pixel_uniform_over_foreground():
    rng = np.random.default_rng(SEED + 2)
    v = np.zeros((12, 13, 14), np.int32)
    pts = rng.choice(v.size, 9, replace=False)
    v.flat[pts] = 7
    v.flat[pts[:3]] = 3  # other values are no foreground for value=7
    a, _ = window(5000, v, mode="mask_pixel", value=[7], crop_shape=[1])
    lin = np.ravel_multi_index(a.T, v.shape)
    want = sorted(pts[3:])
    assert set(lin) == set(want)
    assert chi2_uniform([np.sum(lin == p) for p in want]) > ALPHA
    a, _ = window(3000, v, mode="mask_pixel", crop_shape=[1])  # > 0: all nine
    assert set(np.ravel_multi_index(a.T, v.shape)) == set(pts)
    # clamped centred windows
    a, _ = window(200, v, mode="mask_pixel", crop_shape=[5, 6, 7])
    assert np.all(a >= 0) and np.all(a <= np.array(v.shape) - [5, 6, 7])
    # no foreground: a uniform voxel
    z = np.zeros((3, 4, 5), np.uint8)
    a, _ = window(6000, z, mode="mask_pixel", crop_shape=[1])
    lin = np.ravel_multi_index(a.T, z.shape)
    assert chi2_uniform(np.bincount(lin, minlength=z.size)) > ALPHA


def test_nnunet_fraction():
    rng = np.random.default_rng(SEED + 3)
    v = np.zeros((10, 30, 30), np.uint8)
    v[4, 5, 5] = 1
    v[6, 20, 21] = 2
    for batch in [2, 7, 10]:
        forced_from = round(batch * (1 - 0.33))
        for rep in range(20):
            a, _, _ = FN.random_crop_window([v] * batch, seed=SEED + rep, mode="nnunet",
                                        crop_shape=[1])
            a = np.array([np.asarray(x) for x in a])
            hits = v[tuple(a.T)] > 0
            assert np.all(hits[forced_from:])
    a, _ = window(4000, v, mode="nnunet", crop_shape=[1], oversample_foreground_percent=1.0)
    cls = v[tuple(a.T)]
    assert st.binomtest(int((cls == 1).sum()), len(cls), 0.5).pvalue > ALPHA


def test_class_ratios():
    v = np.zeros((8, 9, 10), np.uint8)
    v[1:3, 1:3, 1:3] = 1
    v[5:7, 5:8, 5:9] = 2
    a, _ = window(6000, v, mode="class_ratios", ratios=[1, 2, 3, 4], crop_shape=[1])
    cls = v[tuple(a.T)]
    n = np.bincount(cls, minlength=3)  # class 3 absent: weight 0
    assert st.chisquare(n, np.array([1, 2, 3]) / 6 * len(cls)).pvalue > ALPHA
    # within a class: uniform over its voxels
    lin = np.ravel_multi_index(a[cls == 1].T, v.shape)
    assert chi2_uniform(np.unique(lin, return_counts=True)[1]) > ALPHA
    assert len(np.unique(lin)) == 8

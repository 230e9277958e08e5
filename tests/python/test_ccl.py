"""connected_components, remove_small_objects and keep_largest_components
(voxpipe.fn, CPU) against scipy.ndimage.label: the same partition, the same
numbering (scipy's labels renumbered by first voxel in C order), counts,
sizes, boxes; the filters against NumPy oracles built on scipy's labels.
cc3d is compared too when it is importable."""
import numpy as np
import pytest
import scipy.ndimage as ndi

import voxpipe

try:
    import cc3d
except ImportError:  # optional oracle
    cc3d = None

# connectivity -> generate_binary_structure rank and order
STRUCT = {6: (3, 1), 18: (3, 2), 26: (3, 3), 4: (2, 1), 8: (2, 2)}


def renumber_c_order(lab):
    """Labels renumbered 1..n by each component's first voxel in C order."""
    flat = lab.ravel()
    ids, first = np.unique(flat, return_index=True)
    keep = ids != 0
    ids, first = ids[keep], first[keep]
    order = ids[np.argsort(first, kind="stable")]
    lut = np.zeros(int(flat.max()) + 1 if flat.size else 1, np.int64)
    lut[order] = np.arange(1, len(order) + 1)
    return lut[lab].astype(np.int32), len(order)


def scipy_label(a, conn, background=0, multi=False):
    st = ndi.generate_binary_structure(*STRUCT[conn])
    if a.ndim == 3 and conn in (4, 8):
        st = st[None]
    if not multi:
        lab, _ = ndi.label(a != background, structure=st)
        return renumber_c_order(lab)
    out = np.zeros(a.shape, np.int64)
    nxt = 0
    for v in np.unique(a[a != background]):
        lab, n = ndi.label(a == v, structure=st)
        out[lab > 0] = lab[lab > 0] + nxt
        nxt += n
    return renumber_c_order(out)


def cc(a, **kw):
    lab, count, sizes, boxes = voxpipe.fn.connected_components(a, **kw)
    return np.asarray(lab), int(np.asarray(count)), np.asarray(sizes), np.asarray(boxes)


def volumes(rng):
    """(name, array) pairs: random densities, unit extents, extremes, worst cases."""
    out = []
    for d in (0.05, 0.2, 0.35, 0.6):
        shape = tuple(int(x) for x in rng.integers(1, 24, 3))
        out.append((f"random {d}", (rng.random(shape) < d).astype(np.uint8)))
    out.append(("unit extents", (rng.random((1, 17, 1)) < 0.5).astype(np.uint8)))
    out.append(("unit depth", (rng.random((1, 13, 19)) < 0.4).astype(np.int16)))
    out.append(("all foreground", np.full((5, 6, 7), 3, np.uint8)))
    out.append(("all background", np.zeros((4, 5, 6), np.int32)))
    z, y, x = np.indices((8, 9, 30))
    out.append(("checkerboard", ((z + y + x) % 2 == 0).astype(np.uint8)))
    out.append(("float32", (rng.random((6, 10, 12)) < 0.3).astype(np.float32) * 2.5))
    return out


@pytest.mark.parametrize("conn", [6, 18, 26])
def test_binary_vs_scipy(rng, conn):
    for name, a in volumes(rng):
        want, n = scipy_label(a, conn)
        lab, count, _, _ = cc(a, connectivity=conn)
        assert count == n, name
        np.testing.assert_array_equal(lab, want, err_msg=name)
        assert lab.dtype == np.int32


@pytest.mark.parametrize("conn", [6, 18, 26])
def test_multi_label_vs_scipy(rng, conn):
    for _ in range(3):
        a = rng.integers(0, 5, tuple(int(x) for x in rng.integers(2, 20, 3))).astype(np.uint8)
        want, n = scipy_label(a, conn, multi=True)
        lab, count, _, _ = cc(a, connectivity=conn, multi_label=True)
        assert count == n
        np.testing.assert_array_equal(lab, want)
        # background other than 0, binary
        want, n = scipy_label(a, conn, background=2)
        lab, count, _, _ = cc(a, connectivity=conn, background=2)
        assert count == n
        np.testing.assert_array_equal(lab, want)


@pytest.mark.parametrize("conn", [4, 8])
def test_2d_and_channel_axis(rng, conn):
    a = (rng.random((37, 41)) < 0.45).astype(np.uint8)
    want, n = scipy_label(a, conn)
    lab, count, _, boxes = cc(a, connectivity=conn, max_components=3)
    assert count == n and lab.shape == a.shape and boxes.shape == (3, 4)
    np.testing.assert_array_equal(lab, want)
    v = (rng.random((1, 6, 7, 8)) < 0.4).astype(np.uint8)  # (1, D, H, W)
    want, n = scipy_label(v[0], 26)
    lab, count, _, boxes = cc(v, max_components=2)  # default: full connectivity
    assert lab.shape == v.shape and boxes.shape == (2, 6)
    np.testing.assert_array_equal(lab[0], want)


def test_default_is_full_connectivity():
    a = np.zeros((3, 3, 3), np.uint8)
    a[0, 0, 0] = a[1, 1, 1] = 1  # corner neighbours: one component in 26, two in 6
    assert cc(a)[1] == 1
    assert cc(a, connectivity=6)[1] == 2


def test_sizes_and_boxes(rng):
    a = (rng.random((12, 14, 16)) < 0.25).astype(np.uint8)
    want, n = scipy_label(a, 26)
    k = n + 3  # more room than components: the tail is zero
    lab, count, sizes, boxes = cc(a, max_components=k)
    assert sizes.shape == (k,) and boxes.shape == (k, 6)
    np.testing.assert_array_equal(sizes[:n], np.bincount(want.ravel())[1:])
    for i, sl in enumerate(ndi.find_objects(want)):
        np.testing.assert_array_equal(boxes[i], [s.start for s in sl] + [s.stop for s in sl])
    assert not sizes[n:].any() and not boxes[n:].any()
    # fewer slots than components: the first ones, count still complete
    lab, count2, sizes2, _ = cc(a, max_components=2)
    assert count2 == n and np.array_equal(sizes2, sizes[:2])


def test_bad_arguments():
    with pytest.raises(Exception, match="connectivity"):
        voxpipe.fn.connected_components(np.zeros((3, 4, 5), np.uint8), connectivity=4)
    with pytest.raises(Exception, match="connectivity 7"):
        voxpipe.fn.connected_components(np.zeros((3, 4, 5), np.uint8), connectivity=7)
    with pytest.raises(Exception, match="axes"):
        voxpipe.fn.connected_components(np.zeros((2, 3, 4, 5), np.uint8))


@pytest.mark.skipif(cc3d is None, reason="cc3d not installed")
@pytest.mark.parametrize("conn", [6, 18, 26])
def test_vs_cc3d(rng, conn):
    a = rng.integers(0, 3, (20, 25, 30)).astype(np.uint8)
    for multi in (False, True):
        ref = cc3d.connected_components(a if multi else (a > 0).astype(np.uint8),
                                        connectivity=conn)
        want, n = renumber_c_order(ref)
        lab, count, _, _ = cc(a, connectivity=conn, multi_label=multi)
        assert count == n
        np.testing.assert_array_equal(lab, want)


def small_oracle(a, min_size, conn, per_label, background=0):
    lab, n = scipy_label(a, conn, background=background, multi=per_label)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    out = a.copy()
    out[(lab > 0) & (sizes[lab] < min_size)] = background
    return out


@pytest.mark.parametrize("conn", [6, 26])
@pytest.mark.parametrize("per_label", [False, True])
def test_remove_small_objects(rng, conn, per_label):
    for dtype in (np.uint8, np.int16, np.float32):
        a = (rng.integers(0, 4, (10, 16, 18)) * (rng.random((10, 16, 18)) < 0.3)).astype(dtype)
        for min_size in (1, 3, 10):
            got = np.asarray(voxpipe.fn.remove_small_objects(
                a, min_size=min_size, connectivity=conn, per_label=per_label))
            assert got.dtype == a.dtype
            np.testing.assert_array_equal(got, small_oracle(a, min_size, conn, per_label))
    b = np.full((4, 5, 6), 7, np.uint8)
    b[0, 0, 0] = 1  # background 7: one single-voxel object of value 1
    got = np.asarray(voxpipe.fn.remove_small_objects(b, min_size=2, background=7))
    np.testing.assert_array_equal(got, np.full_like(b, 7))


def largest_oracle(a, k, conn, independent):
    lab, n = scipy_label(a, conn, multi=independent)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = np.zeros(n + 1, bool)
    if n:
        first = np.unique(lab.ravel(), return_index=True)
        vals = a.ravel()[first[1][first[0] > 0]]  # value of component i+1
        groups = np.unique(vals) if independent else [None]
        for g in groups:
            ids = np.arange(1, n + 1) if g is None else np.arange(1, n + 1)[vals == g]
            # size descending, ties to the earlier first voxel (smaller label)
            order = ids[np.lexsort((ids, -sizes[ids]))]
            keep[order[:k]] = True
    out = a.copy()
    out[(lab > 0) & ~keep[lab]] = 0
    return out


@pytest.mark.parametrize("conn", [6, 18, 26])
@pytest.mark.parametrize("independent", [False, True])
def test_keep_largest_components(rng, conn, independent):
    for k in (1, 2, 5):
        a = (rng.integers(1, 4, (9, 14, 17)) * (rng.random((9, 14, 17)) < 0.25)).astype(np.uint8)
        got = np.asarray(voxpipe.fn.keep_largest_components(
            a, k=k, connectivity=conn, independent=independent))
        np.testing.assert_array_equal(got, largest_oracle(a, k, conn, independent))


@pytest.mark.skipif(voxpipe.cuda_device_count() == 0, reason="needs a GPU")
@pytest.mark.parametrize("conn", [6, 26])
@pytest.mark.parametrize("multi", [False, True])
def test_component_filters_gpu(rng, conn, multi):
    """Eager device="gpu" calls of both filters on a batch of mixed shapes (extents
    of 1 included): the CPU body's outputs bit for bit, and the scipy oracles."""
    shapes = [(10, 16, 18), (1, 7, 30), (5, 1, 9)]
    for dtype in (np.uint8, np.int16, np.float32):
        a = [(rng.integers(1, 4, s) * (rng.random(s) < 0.3)).astype(dtype) for s in shapes]
        for min_size in (0, 1, 3, 10):
            kw = dict(min_size=min_size, connectivity=conn, per_label=multi)
            gpu = voxpipe.fn.remove_small_objects(a, device="gpu", **kw)
            cpu = voxpipe.fn.remove_small_objects(a, **kw)
            for x, g, c in zip(a, gpu, cpu):
                assert g.device.startswith("gpu")
                g = np.asarray(g.cpu())
                assert g.dtype == x.dtype
                np.testing.assert_array_equal(g, np.asarray(c))
                np.testing.assert_array_equal(g, small_oracle(x, min_size, conn, multi))
        for k in (1, 2, 1000):
            kw = dict(k=k, connectivity=conn, independent=multi)
            gpu = voxpipe.fn.keep_largest_components(a, device="gpu", **kw)
            cpu = voxpipe.fn.keep_largest_components(a, **kw)
            for x, g, c in zip(a, gpu, cpu):
                g = np.asarray(g.cpu())
                np.testing.assert_array_equal(g, np.asarray(c))
                np.testing.assert_array_equal(g, largest_oracle(x, k, conn, multi))


def runs_volume(rng, shape, values):
    """Segments of 1..70 equal values in C order (long runs cross the scanner's words)."""
    n = int(np.prod(shape))
    out = np.empty(n, np.asarray(values).dtype)
    i = 0
    while i < n:
        ln = int(rng.integers(1, 71 if rng.random() < 0.5 else 6))
        out[i:i + ln] = values[int(rng.integers(len(values)))]
        i += ln
    return out.reshape(shape)


@pytest.mark.parametrize("conn", [6, 18, 26])
def test_scan_widths_and_dtypes_vs_scipy(rng, conn):
    """Widths 1..17 and around 8-byte words, every integer width, backgrounds at the
    dtype's extremes: the labels of scipy (renumbered), binary and multi-label."""
    cases = [(np.uint8, [0, 1, 255], 255), (np.int8, [0, -1, -128, 5], -1),
             (np.uint16, [0, 7, 65535], 0), (np.int16, [0, -32768, 3], -32768),
             (np.uint32, [0, 1, 2**32 - 1], 2**32 - 1), (np.int32, [0, -1, 9], 0),
             (np.int64, [0, -2**62, 4], -2**62), (np.float32, [0, -1.5, 2.0], -1.5)]
    widths = list(range(1, 18)) + [63, 64, 65, 130]
    for dtype, values, bg in cases:
        for w in rng.choice(widths, 4, replace=False):
            shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)), int(w))
            a = runs_volume(rng, shape, np.array(values, dtype))
            for multi in (False, True):
                want, n = scipy_label(a, conn, background=bg, multi=multi)
                lab, count, _, _ = cc(a, connectivity=conn, background=float(bg),
                                      multi_label=multi)
                msg = f"{np.dtype(dtype).name} shape {shape} bg {bg} multi {multi}"
                assert count == n, msg
                np.testing.assert_array_equal(lab, want, err_msg=msg)


def blob_volume(rng, shape, frac):
    """Boxes of 2..4 voxels per side at random positions until `frac` is foreground
    (bench/bench_ccl.py's blobs, smaller)."""
    a = np.zeros(shape, np.uint8)
    while a.mean() < frac:
        for (z, y, x), (dz, dy, dx) in zip(rng.integers(0, shape, (200, 3)),
                                           rng.integers(2, 5, (200, 3))):
            a[z:z + dz, y:y + dy, x:x + dx] = 1
    return a


@pytest.mark.parametrize("conn", [6, 18, 26])
def test_blobs_vs_scipy_and_cc3d(rng, conn):
    """A blob volume large enough for the eager call's thread pool (2^18 voxels) and
    tall enough for a slab per core: scipy's partition and numbering, and cc3d's when
    it is installed."""
    a = blob_volume(rng, (128, 48, 57), 0.08)
    want, n = scipy_label(a, conn)
    lab, count, _, _ = cc(a, connectivity=conn)
    assert count == n
    np.testing.assert_array_equal(lab, want)
    if cc3d is not None:
        ref, m = renumber_c_order(cc3d.connected_components(a, connectivity=conn))
        assert m == n
        np.testing.assert_array_equal(lab, ref)

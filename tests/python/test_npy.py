"""voxpipe's .npy reader and writer against NumPy: files written by np.save
(every dtype, C and Fortran order, both byte orders, 0-D to 5-D shapes,
zero extents) read back identical to np.load; regions against NumPy slicing
with every out-of-bounds policy; voxpipe.save read by np.load."""

import glob
import os
import sys

import numpy as np
import pytest

try:
    import voxpipe
except ImportError:  # run from a checkout without PYTHONPATH
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
    import voxpipe

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "..", "data", "bad")

DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4", "i8", "f2", "f4", "f8", "?"]
SHAPES = [(), (7,), (3, 5), (2, 3, 4), (2, 1, 3, 5), (2, 2, 3, 1, 4), (0,), (3, 0, 2), (0, 0)]


@pytest.fixture(scope="module")
def rng():
    seed = int(os.environ.get("VP_TEST_SEED", np.random.SeedSequence().entropy % 2**32))
    print(f"VP_TEST_SEED={seed}")
    return np.random.default_rng(seed)


def random_array(rng, dtype, shape):
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dt)
    native = dt.newbyteorder("=")
    info = np.iinfo(native)
    return rng.integers(info.min, info.max, shape, dtype=native, endpoint=True).astype(dt)


def expected_dtype(dt):
    dt = np.dtype(dt)
    return np.dtype("u1") if dt.kind == "b" else dt.newbyteorder("=")


def check_same(t, ref):
    got = np.asarray(t)
    assert got.dtype == expected_dtype(ref.dtype), (got.dtype, ref.dtype)
    assert t.dtype == expected_dtype(ref.dtype).name
    assert got.shape == ref.shape
    assert tuple(t.shape) == ref.shape
    assert got.flags["C_CONTIGUOUS"]
    want = ref.astype(expected_dtype(ref.dtype))
    # bitwise for floats too (NaN-free inputs; -0.0 kept)
    assert np.array_equal(got.view(f"u{got.dtype.itemsize}") if got.dtype.kind == "f" else got,
                          want.view(f"u{want.dtype.itemsize}") if want.dtype.kind == "f" else want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_np_save_then_load(tmp_path, rng, dtype, order, byteorder):
    for shape in SHAPES:
        a = random_array(rng, dtype, shape)
        if np.dtype(dtype).itemsize > 1:
            a = a.astype(np.dtype(dtype).newbyteorder(byteorder))
        if order == "F":
            a = np.asfortranarray(a)
        p = tmp_path / "a.npy"
        np.save(p, a)
        ref = np.load(p)
        for mmap in (False, True):
            check_same(voxpipe.load(p, mmap=mmap), ref)
        info = voxpipe.file_info(p)
        assert info is not None


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_format_versions(tmp_path, rng, version):
    a = random_array(rng, "<i2", (4, 5, 6))
    p = tmp_path / "v.npy"
    with open(p, "wb") as f:
        np.lib.format.write_array(f, a, version=version)
    check_same(voxpipe.load(p), np.load(p))


def roi_oracle(a, start, shape, oob, fill):
    """NumPy slicing of the trailing axes, padded or trimmed."""
    n = len(start)
    lead = a.ndim - n
    st = [0] * lead + list(start)
    sh = list(a.shape[:lead]) + list(shape)
    if oob == "trim":
        for i in range(a.ndim):
            lo = min(max(st[i], 0), a.shape[i])
            hi = max(min(st[i] + sh[i], a.shape[i]), lo)
            st[i], sh[i] = lo, hi - lo
    if a.dtype.kind in "iu":  # voxpipe rounds (ties to even) and saturates
        info = np.iinfo(a.dtype)
        fill = np.clip(np.rint(fill), info.min, info.max)
    out = np.full(sh, fill, dtype=a.dtype) if oob != "error" else np.empty(sh, a.dtype)
    src, dst = [], []
    for i in range(a.ndim):
        lo, hi = max(st[i], 0), min(st[i] + sh[i], a.shape[i])
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - st[i], hi - st[i]))
    out[tuple(dst)] = a[tuple(src)]
    return out


@pytest.mark.parametrize("oob", ["error", "pad", "trim"])
@pytest.mark.parametrize("layout", ["<f4", ">i2", "F<u2", "F>f8", "|u1"])
def test_roi_against_slicing(tmp_path, rng, oob, layout):
    fortran = layout.startswith("F")
    dt = np.dtype(layout.lstrip("F"))
    a = random_array(rng, dt, (3, 9, 10, 11))
    if fortran:
        a = np.asfortranarray(a)
    p = tmp_path / "r.npy"
    np.save(p, a)
    for trial in range(60):
        n = int(rng.integers(1, 5))
        dims = a.shape[4 - n:]
        if oob == "error":
            start = [int(rng.integers(0, d + 1)) for d in dims]
            shape = [int(rng.integers(0, d - s + 1)) for d, s in zip(dims, start)]
        else:  # often half outside
            start = [int(rng.integers(-d // 2 - 2, d + 2)) for d in dims]
            shape = [int(rng.integers(0, d + 3)) for d in dims]
        fill = -3.0
        want = roi_oracle(a, start, shape, oob, fill)
        for mmap in (False, True):
            t = voxpipe.load(p, roi=(start, shape), oob=oob, fill=fill, mmap=mmap)
            got = np.asarray(t)
            assert got.shape == want.shape, (start, shape, oob)
            assert got.dtype == dt.newbyteorder("=")
            np.testing.assert_array_equal(got, want, err_msg=f"{start} {shape} {oob}")


def test_roi_out_of_bounds_error_names_axis(tmp_path):
    p = tmp_path / "oob.npy"
    np.save(p, np.zeros((4, 5, 6), np.float32))
    with pytest.raises(ValueError, match=r"oob\.npy.*axis 2"):
        voxpipe.load(p, roi=((0, 0, 3), (4, 5, 4)))
    # pad fills with the value converted to the dtype (saturated)
    np.save(p, np.ones((4, 5), np.uint8))
    t = np.asarray(voxpipe.load(p, roi=((-1, 0), (2, 5)), oob="pad", fill=300))
    assert (t[0] == 255).all() and (t[1] == 1).all()


def test_roi_reads_only_region_bytes(tmp_path, rng):
    a = random_array(rng, "f4", (40, 64, 64))
    p = tmp_path / "b.npy"
    np.save(p, a)
    header = os.path.getsize(p) - a.nbytes
    start, shape = (5, 10, 20), (16, 32, 24)
    region = int(np.prod(shape)) * 4
    for mmap in (False, True):
        voxpipe.io_reset_bytes_read()
        t = voxpipe.load(p, roi=(start, shape), mmap=mmap)
        assert voxpipe.io_bytes_read() - header == region
        np.testing.assert_array_equal(
            np.asarray(t), a[5:21, 10:42, 20:44])


def test_voxpipe_save_then_np_load(tmp_path, rng):
    for dtype in DTYPES[:-1]:
        for shape in [s for s in SHAPES if s and 0 not in s]:
            a = random_array(rng, dtype, shape)
            p = tmp_path / "s.npy"
            voxpipe.save(p, a)
            b = np.load(p)
            assert b.dtype == a.dtype and b.shape == a.shape
            assert np.array_equal(b.view(f"u{b.itemsize}") if b.dtype.kind == "f" else b,
                                  a.view(f"u{a.itemsize}") if a.dtype.kind == "f" else a)
            with open(p, "rb") as f:
                major, minor = np.lib.format.read_magic(f)
                assert (major, minor) == (1, 0)
                hdr = np.lib.format.read_array_header_1_0(f)
                assert f.tell() % 64 == 0
            assert hdr[1] is False  # C order
    # a big-endian or Fortran input is saved as little-endian C order
    a = np.asfortranarray(random_array(rng, ">i4", (3, 4, 5)))
    voxpipe.save(tmp_path / "s.npy", a)
    b = np.load(tmp_path / "s.npy")
    assert b.dtype == np.dtype("<i4") and b.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(b, a)


# 0-D arrays keep their shape and arrays with a zero extent (whose strides
# NumPy exports arbitrarily) are accepted through DLPack.
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2)])
def test_save_scalar_and_empty(tmp_path, shape):
    a = np.full(shape, 4.5, np.float32)
    voxpipe.save(tmp_path / "z.npy", a)
    b = np.load(tmp_path / "z.npy")
    assert b.shape == shape and b.dtype == np.float32
    np.testing.assert_array_equal(b, a)


def test_load_of_saved_tensor(tmp_path, rng):
    a = random_array(rng, "f2", (2, 3, 4))
    voxpipe.save(tmp_path / "h.npy", a)
    t = voxpipe.load(tmp_path / "h.npy")
    voxpipe.save(tmp_path / "h2.npy", t)
    assert np.load(tmp_path / "h2.npy").dtype == np.float16
    assert (tmp_path / "h.npy").read_bytes() == (tmp_path / "h2.npy").read_bytes()


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(BAD, "npy_*.npy"))),
                         ids=os.path.basename)
def test_bad_files_raise(path):
    # the binding maps format errors to VoxpipeError, overflow to ValueError
    with pytest.raises((voxpipe.VoxpipeError, ValueError)) as e:
        voxpipe.load(path)
    assert os.path.basename(path) in str(e.value)

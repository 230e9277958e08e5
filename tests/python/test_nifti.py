"""NIfTI reading and writing with nibabel as the oracle.

Files nibabel writes must load through voxpipe exactly as
np.asanyarray(img.dataobj) gives them (transposed to array order, same
values bit for bit, same dtype), with nibabel's affine and zooms; files
voxpipe writes must load through nibabel identically. Fresh random data per
run (seed printed by the rng fixture)."""
import gzip
import os

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
import voxpipe  # noqa: E402

DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64, np.float32,
          np.float64]


def random_array(rng, dtype, shape):
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)


def random_affine(rng, zooms):
    q = rng.standard_normal(4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    aff = np.eye(4)
    aff[:3, :3] = R * np.asarray(zooms)[None, :3]
    aff[:3, 3] = rng.uniform(-100, 100, 3)
    return aff


def check_same(path, img=None):
    """voxpipe.load(path) against nibabel's reading of the same file."""
    img = nib.load(path) if img is None else img
    want = np.asanyarray(img.dataobj)
    # voxpipe returns native byte order; values and kind must match
    want = np.asarray(want).astype(want.dtype.newbyteorder("="), copy=False)
    t = voxpipe.load(path)
    got = np.asarray(t)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.T.shape
    np.testing.assert_array_equal(got, want.T, strict=True)
    np.testing.assert_allclose(t.affine, img.affine, rtol=1e-6, atol=1e-6)
    zooms = img.header.get_zooms()[:3]
    nsp = min(len(want.shape), 3)
    assert tuple(t.spacing)[:nsp] == pytest.approx(tuple(reversed(zooms[:nsp])), rel=1e-7)
    return t


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
@pytest.mark.parametrize("ndim", [3, 4])
def test_reads_what_nibabel_writes(tmp_path, rng, dtype, ext, ndim):
    shape = tuple(int(s) for s in rng.integers(2, 9, size=ndim))
    a = random_array(rng, dtype, shape)
    zooms = rng.uniform(0.5, 3, 3)
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(dtype)
    img = nib.Nifti1Image(a, random_affine(rng, zooms), header=hdr)
    path = str(tmp_path / f"img{ext}")
    nib.save(img, path)
    check_same(path)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_scaled_with_set_slope_inter(tmp_path, rng, dtype, ext):
    a = random_array(rng, dtype, (5, 6, 7))
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(dtype)
    path = str(tmp_path / f"s{ext}")
    nib.save(nib.Nifti1Image(a, np.eye(4), header=hdr), path)
    # rewrite the header with a slope and intercept; the data stays raw
    slope, inter = float(rng.uniform(-3, 3)), float(rng.uniform(-100, 100))
    img = nib.load(path)
    h = img.header.copy()
    h.set_slope_inter(slope, inter)
    h["vox_offset"] = 352  # a loaded header's copy says 0
    blob = np.asanyarray(img.dataobj.get_unscaled())
    opener = gzip.open if ext.endswith(".gz") else open
    with opener(path, "rb") as f:
        body = f.read()
    raw = h.binaryblock + body[348:]
    with opener(path, "wb") as f:
        f.write(raw)
    check_same(path)
    t = voxpipe.load(path, raw=True)
    np.testing.assert_array_equal(np.asarray(t), blob.T, strict=True)
    info = voxpipe.file_info(path)
    assert info["scl_slope"] == pytest.approx(float(np.float32(slope)))


@pytest.mark.parametrize("out_dtype", [np.int16, np.uint8, np.int8])
def test_nibabel_own_scaling(tmp_path, rng, out_dtype):
    # float data saved as an integer type: nibabel picks slope and intercept
    a = rng.standard_normal((6, 5, 4)) * 50 + 10
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(out_dtype)
    path = str(tmp_path / "own.nii.gz")
    nib.save(nib.Nifti1Image(a, np.eye(4), header=hdr), path)
    check_same(path)


def test_big_endian(tmp_path, rng):
    for dtype in (np.int16, np.float32, np.float64, np.uint16):
        a = random_array(rng, dtype, (4, 5, 6))
        hdr = nib.Nifti1Header(endianness=">")
        hdr.set_data_dtype(dtype)
        path = str(tmp_path / "be.nii")
        nib.save(nib.Nifti1Image(a, np.diag([2.0, 3.0, 4.0, 1.0]), header=hdr), path)
        assert nib.load(path).header.endianness == ">"
        check_same(path)
        assert voxpipe.file_info(path)["big_endian"]


@pytest.mark.parametrize("forms", ["sform", "qform", "both", "neither"])
def test_transform_choice(tmp_path, rng, forms):
    a = random_array(rng, np.int16, (7, 6, 5))
    zooms = rng.uniform(0.5, 3, 3)
    img = nib.Nifti1Image(a, None)
    img.header.set_zooms(zooms)
    aff_q = random_affine(rng, zooms)
    aff_s = random_affine(rng, zooms)
    aff_s[:3, :3] *= 1.1  # a slightly different sform
    if forms in ("qform", "both"):
        img.set_qform(aff_q, code=1)
    else:
        img.set_qform(None, code=0)
    if forms in ("sform", "both"):
        img.set_sform(aff_s, code=2)
    else:
        img.set_sform(None, code=0)
    path = str(tmp_path / "x.nii")
    nib.save(img, path)
    back = nib.load(path)
    assert int(back.header["sform_code"]) == (2 if forms in ("sform", "both") else 0)
    assert int(back.header["qform_code"]) == (1 if forms in ("qform", "both") else 0)
    check_same(path, back)


@pytest.mark.parametrize("ext", [".hdr", ".hdr.gz"])
def test_pairs(tmp_path, rng, ext):
    a = random_array(rng, np.float32, (5, 4, 3, 2))
    img = nib.Nifti1Pair(a, random_affine(rng, (1, 2, 3)))
    path = str(tmp_path / f"pair{ext}")
    nib.save(img, path)
    check_same(path)
    check_same(path.replace(".hdr", ".img"), nib.load(path))


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_nifti2(tmp_path, rng, ext):
    a = random_array(rng, np.int32, (6, 5, 4))
    img = nib.Nifti2Image(a, random_affine(rng, (0.9, 1.1, 2.5)))
    path = str(tmp_path / f"n2{ext}")
    nib.save(img, path)
    check_same(path)
    assert voxpipe.file_info(path)["format"] == "nifti2"


@pytest.mark.parametrize("dtype", DTYPES + [np.float16])
@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_nibabel_reads_what_voxpipe_writes(tmp_path, rng, dtype, ext):
    shape = tuple(int(s) for s in rng.integers(2, 9, size=4))
    a = random_array(rng, dtype, shape)
    spacing = tuple(float(s) for s in rng.uniform(0.5, 3, 3))  # dz, dy, dx
    aff = random_affine(rng, spacing[::-1])
    path = str(tmp_path / f"w{ext}")
    voxpipe.save(path, a, spacing=spacing, affine=aff)
    img = nib.load(path)
    got = np.asanyarray(img.dataobj)
    want = a.astype(np.float32) if dtype == np.float16 else a
    np.testing.assert_array_equal(got.T, want, strict=True)
    np.testing.assert_allclose(img.affine, aff, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(img.header.get_zooms()[:3], spacing[::-1], rtol=1e-6)
    # the qform is the affine as nibabel itself encodes it (float32 quaternions
    # lose precision near 180-degree rotations, the same for both writers)
    ref = nib.Nifti1Header()
    ref.set_data_shape(a.T.shape)
    ref.set_qform(aff, code=1)
    np.testing.assert_allclose(img.get_qform(), ref.get_qform(), rtol=1e-6, atol=1e-5)


def test_written_gzip_is_plain_gzip(tmp_path, rng):
    a = random_array(rng, np.int16, (40, 300, 300))  # > 4 MiB: several members
    path = str(tmp_path / "multi.nii.gz")
    voxpipe.save(path, a)
    with gzip.open(path, "rb") as f:
        raw = f.read()
    assert len(raw) == 352 + a.nbytes
    np.testing.assert_array_equal(np.frombuffer(raw[352:], np.int16), a.ravel())


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_roi_matches_nibabel_slicing(tmp_path, rng, ext):
    a = random_array(rng, np.int16, (20, 18, 16, 3))  # x, y, z, t
    img = nib.Nifti1Image(a, random_affine(rng, (1, 1, 2)))
    path = str(tmp_path / f"roi{ext}")
    nib.save(img, path)
    for _ in range(5):
        sz = [int(rng.integers(1, n + 1)) for n in (16, 18, 20)]  # z, y, x sizes
        st = [int(rng.integers(0, n - s + 1)) for n, s in zip((16, 18, 20), sz)]
        t = voxpipe.load(path, roi=(st, sz))
        want = img.slicer[st[2]:st[2] + sz[2], st[1]:st[1] + sz[1], st[0]:st[0] + sz[0], :]
        np.testing.assert_array_equal(np.asarray(t), np.asanyarray(want.dataobj).T, strict=True)
        np.testing.assert_allclose(t.affine, want.affine, rtol=1e-6, atol=1e-6)


def test_roi_reads_only_the_region(tmp_path, rng):
    a = random_array(rng, np.float32, (64, 64, 64))
    path = str(tmp_path / "big.nii")
    nib.save(nib.Nifti1Image(a, np.eye(4)), path)
    voxpipe.io_reset_bytes_read()
    voxpipe.load(path, roi=([10, 10, 10], [4, 4, 4]))
    assert voxpipe.io_bytes_read() < 4 * 64 * 4 + 2048


def test_bad_files_raise_naming_the_file():
    bad = os.path.join(os.path.dirname(__file__), "..", "data", "bad")
    names = sorted(n for n in os.listdir(bad) if n.startswith("nii"))
    assert len(names) >= 20
    for n in names:
        with pytest.raises(Exception) as e:
            voxpipe.load(os.path.join(bad, n))
        assert n in str(e.value)

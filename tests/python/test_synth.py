"""`voxpipe synth` and `voxpipe preview` through the CLI: the dataset.json
written and the files it lists, read back with nibabel and np.load (shapes,
dtypes, spacing, affine, label classes, normalisation), determinism across
thread counts, exit codes for good and bad usage, and the preview PNG."""

import json
import os
import struct
import subprocess
import zlib

import nibabel as nib
import numpy as np
import pytest


def run(cli, *args):
    return subprocess.run([cli, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def seed():
    s = int(os.environ.get("VP_TEST_SEED", np.random.SeedSequence().entropy % 2**32))
    print(f"VP_TEST_SEED={s}")
    return s


def entries(root):
    with open(os.path.join(root, "dataset.json")) as f:
        meta = json.load(f)
    assert meta["numTraining"] == len(meta["training"])
    return meta, [
        (os.path.join(root, e["image"]), os.path.join(root, e["label"])) for e in meta["training"]
    ]


def test_brats_nii(cli, tmp_path, seed):
    out = tmp_path / "brats"
    r = run(cli, "synth", "--kind", "brats", "--out", str(out), "--cases", "2", "--seed",
            str(seed), "--shape", "40,64,56")
    assert r.returncode == 0, r.stderr
    meta, files = entries(out)
    assert meta["modality"] == {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}
    assert set(meta["labels"]) == {"0", "1", "2", "4"}
    assert [os.path.basename(i) for i, _ in files] == ["BRATS_001.nii.gz", "BRATS_002.nii.gz"]
    for img_path, lab_path in files:
        assert "/imagesTr/" in img_path and "/labelsTr/" in lab_path
        img, lab = nib.load(img_path), nib.load(lab_path)
        # NIfTI's (x, y, z, t) is the array's (W, H, D, C)
        assert img.shape == (56, 64, 40, 4)
        assert lab.shape == (56, 64, 40)
        assert img.get_data_dtype() == np.int16
        assert lab.get_data_dtype() == np.uint8
        assert np.allclose(img.header.get_zooms()[:3], (1, 1, 1))
        assert np.allclose(np.diag(img.affine)[:3], (-1, -1, 1))
        a = np.asarray(img.dataobj)
        y = np.asarray(lab.dataobj)
        assert set(np.unique(y)) <= {0, 1, 2, 4}
        assert a[0, 0, 0].tolist() == [0, 0, 0, 0]
        # background is 0 in all channels at once
        zeros = (a == 0).sum(axis=3)
        assert set(np.unique(zeros)) <= {0, 4}
        assert (y[zeros == 4] == 0).all()


def test_kits_npy_normalised(cli, tmp_path, seed):
    out = tmp_path / "kits"
    r = run(cli, "synth", "--kind", "kits", "--out", str(out), "--cases", "2", "--seed",
            str(seed), "--scale", "0.15", "--format", "npy")
    assert r.returncode == 0, r.stderr
    meta, files = entries(out)
    assert meta["modality"] == {"0": "CT"}
    assert meta["labels"] == {"0": "background", "1": "kidney", "2": "tumor"}
    assert [os.path.basename(p) for pair in files for p in pair] == [
        "case_00000_x.npy", "case_00000_y.npy", "case_00001_x.npy", "case_00001_y.npy"]
    for img_path, lab_path in files:
        x, y = np.load(img_path), np.load(lab_path)
        assert x.dtype == np.float32 and y.dtype == np.uint8
        assert x.ndim == 4 and x.shape[0] == 1 and y.shape == x.shape
        d, h, w = x.shape[1:]
        assert 15 <= d <= 69 and 37 <= h <= 63 and 37 <= w <= 63
        lo, hi = (-79 - 101) / 76.9, (304 - 101) / 76.9
        assert x.min() >= lo - 1e-5 and x.max() <= hi + 1e-5
        assert np.isclose(x.min(), lo, atol=1e-5)  # air clipped
        assert set(np.unique(y)) == {0, 1, 2}


def test_kits_nii_matches_npy(cli, tmp_path, seed):
    """The same case written both ways: the npy is the nii's HU normalised."""
    args = ["--kind", "kits", "--seed", str(seed), "--shape", "24,48,40"]
    assert run(cli, "synth", *args, "--out", str(tmp_path / "a")).returncode == 0
    assert run(cli, "synth", *args, "--out", str(tmp_path / "b"), "--format", "npy",
               "--threads", "1").returncode == 0
    img = nib.load(tmp_path / "a" / "imagesTr" / "case_00000.nii.gz")
    assert img.shape == (40, 48, 24)
    assert np.allclose(img.header.get_zooms(), (1.2, 1.2, 1.6))
    hu = np.asarray(img.dataobj).transpose(2, 1, 0)
    # air around the body
    assert abs(hu[:, 0, :].mean() + 1000) < 30
    x = np.load(tmp_path / "b" / "case_00000_x.npy")[0]
    want = (np.clip(hu.astype(np.float64), -79, 304) - 101) / 76.9
    np.testing.assert_allclose(x, want, atol=1e-5)
    lab = np.asarray(nib.load(tmp_path / "a" / "labelsTr" / "case_00000.nii.gz").dataobj)
    np.testing.assert_array_equal(np.load(tmp_path / "b" / "case_00000_y.npy")[0],
                                  lab.transpose(2, 1, 0))


def test_brats_npy_zscore_and_threads(cli, tmp_path, seed):
    args = ["--kind", "brats", "--seed", str(seed), "--shape", "32,48,40", "--format", "npy"]
    assert run(cli, "synth", *args, "--out", str(tmp_path / "t1"), "--threads", "1").returncode == 0
    assert run(cli, "synth", *args, "--out", str(tmp_path / "t2"), "--threads", "2").returncode == 0
    for name in ("case_00000_x.npy", "case_00000_y.npy"):
        a = (tmp_path / "t1" / name).read_bytes()
        b = (tmp_path / "t2" / name).read_bytes()
        assert a == b
    x = np.load(tmp_path / "t1" / "case_00000_x.npy")
    assert x.shape == (4, 32, 48, 40) and x.dtype == np.float32
    for c in range(4):
        v = x[c][x[c] != 0]
        assert abs(v.mean()) < 1e-3 and abs(v.std() - 1) < 1e-3
    assert run(cli, "synth", *args[:3], str(seed + 1), *args[4:], "--out",
               str(tmp_path / "t3")).returncode == 0
    assert (tmp_path / "t3" / "case_00000_x.npy").read_bytes() != (
        tmp_path / "t1" / "case_00000_x.npy").read_bytes()


@pytest.mark.parametrize("args,bad", [
    (["--kind", "liver", "--out", "X"], "--kind"),
    (["--out", "X"], "--kind"),
    (["--kind", "brats"], "--out"),
    (["--kind", "brats", "--out", "X", "--cases", "0"], "--cases"),
    (["--kind", "brats", "--out", "X", "--shape", "10,20"], "--shape"),
    (["--kind", "brats", "--out", "X", "--scale", "-1"], "--scale"),
    (["--kind", "brats", "--out", "X", "--format", "png"], "--format"),
    (["--kind", "brats", "--out", "X", "--threads", "x"], "--threads"),
    (["--kind", "brats", "--out", "X", "--seed"], "--seed"),
    (["--kind", "brats", "--out", "X", "--frobnicate", "1"], "--frobnicate"),
])
def test_synth_bad_usage(cli, tmp_path, args, bad):
    args = [str(tmp_path / a) if a == "X" else a for a in args]
    r = run(cli, "synth", *args)
    assert r.returncode == 2
    assert bad in r.stderr
    assert not (tmp_path / "X").exists()


def test_synth_help_and_failure(cli, tmp_path):
    r = run(cli, "synth", "--help")
    assert r.returncode == 0 and "--kind" in r.stdout
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = run(cli, "synth", "--kind", "kits", "--out", str(blocker), "--scale", "0.1")
    assert r.returncode == 1
    assert str(blocker) in r.stderr


def png_size(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    w, h, depth, color = struct.unpack(">IIBB", data[16:26])
    crc = struct.unpack(">I", data[29:33])[0]
    assert crc == zlib.crc32(data[12:29]) & 0xFFFFFFFF
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"
    return w, h, depth, color


def test_preview(cli, tmp_path, seed):
    out = tmp_path / "brats"
    assert run(cli, "synth", "--kind", "brats", "--out", str(out), "--seed", str(seed),
               "--shape", "30,50,44").returncode == 0
    img = out / "imagesTr" / "BRATS_001.nii.gz"
    lab = out / "labelsTr" / "BRATS_001.nii.gz"
    png = tmp_path / "p.png"
    for axis, (rows, cols) in enumerate([(50, 44), (30, 44), (30, 50)]):
        r = run(cli, "preview", str(img), "--label", str(lab), "--out", str(png), "--axis",
                str(axis))
        assert r.returncode == 0, r.stderr
        # four channels side by side with 4-pixel gaps
        assert png_size(png) == (4 * cols + 3 * 4, rows, 8, 2)
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]
    r = run(cli, "preview", str(lab), "--out", str(png))
    assert r.returncode == 0 and png_size(png)[:2] == (44, 50)
    assert run(cli, "preview", str(img), "--out", str(png), "--axis", "3").returncode == 2
    assert run(cli, "preview", str(img)).returncode == 2
    assert run(cli, "preview", str(tmp_path / "missing.nii"), "--out", str(png)).returncode == 1

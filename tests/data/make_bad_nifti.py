#!/usr/bin/env python3
"""Writes tests/data/bad/nii_*: small malformed NIfTI files that every reader
must refuse with an error naming the file (and without crashing).

Run from anywhere: python3 tests/data/make_bad_nifti.py [outdir]
The output is deterministic (fixed data, gzip mtime 0)."""
import gzip
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def nifti1(dims=(3, 4, 4, 4), datatype=4, bitpix=16, vox_offset=352.0, magic=b"n+1\0",
           slope=1.0, inter=0.0, qform_code=0, sform_code=1, quatern=(0.0, 0.0, 0.0),
           sizeof_hdr=348, endian="<"):
    """A 352-byte NIfTI-1 header (+ extension flag), fields as given."""
    h = bytearray(352)
    struct.pack_into(endian + "i", h, 0, sizeof_hdr)
    d = list(dims) + [1] * (8 - len(dims))
    struct.pack_into(endian + "8h", h, 40, *d)
    struct.pack_into(endian + "hh", h, 70, datatype, bitpix)
    struct.pack_into(endian + "8f", h, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into(endian + "fff", h, 108, vox_offset, slope, inter)
    struct.pack_into(endian + "hh", h, 252, qform_code, sform_code)
    struct.pack_into(endian + "3f", h, 256, *quatern)
    struct.pack_into(endian + "12f", h, 280, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0)
    h[344:348] = magic
    return bytes(h)


def nifti2(dims=(3, 4, 4, 4), datatype=4, bitpix=16, vox_offset=544, eol=b"\r\n\032\n"):
    h = bytearray(544)
    struct.pack_into("<i", h, 0, 540)
    h[4:8] = b"n+2\0"
    h[8:12] = eol
    struct.pack_into("<hh", h, 12, datatype, bitpix)
    d = list(dims) + [1] * (8 - len(dims))
    struct.pack_into("<8q", h, 16, *d)
    struct.pack_into("<8d", h, 104, *([1.0] * 8))
    struct.pack_into("<q", h, 168, vox_offset)
    struct.pack_into("<dd", h, 176, 1.0, 0.0)
    struct.pack_into("<ii", h, 344, 0, 1)
    struct.pack_into("<12d", h, 400, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0)
    return bytes(h)


def data(n):
    # a fixed, not very compressible byte pattern
    out = bytearray(n)
    x = 12345
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


def gz(b):
    return gzip.compress(b, compresslevel=6, mtime=0)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "bad")
    os.makedirs(out, exist_ok=True)
    good = nifti1() + data(4 * 4 * 4 * 2)
    big_good = nifti1(dims=(3, 32, 32, 32)) + data(32 * 32 * 32 * 2)
    files = {
        "nii_truncated_header.nii": good[:200],
        "nii_empty.nii": b"",
        "nii_truncated_data.nii": good[: 352 + 64],
        "nii_truncated_gzip.nii.gz": gz(big_good)[: len(gz(big_good)) // 2],
        "nii_truncated_gzip_header.nii.gz": gz(big_good)[:100],
        "nii_gzip_trailing_garbage.nii.gz": gz(good) + b"garbage!",
        "nii_wrong_magic.nii": nifti1(magic=b"abc\0") + data(128),
        "nii_wrong_sizeof_hdr.nii": nifti1(sizeof_hdr=350) + data(128),
        "nii_negative_dim.nii": nifti1(dims=(3, 4, -4, 4)) + data(128),
        "nii_zero_dim0.nii": nifti1(dims=(0, 4, 4, 4)) + data(128),
        "nii_dim0_8.nii": nifti1(dims=(8, 4, 4, 4, 1, 1, 1, 1)) + data(128),
        "nii_huge_dims.nii": nifti1(dims=(3, 32767, 32767, 32767)) + data(128),
        "nii_huge_dims.nii.gz": gz(nifti1(dims=(3, 32767, 32767, 32767)) + data(128)),
        "nii_dims_overflow.nii": nifti1(dims=(7, 32767, 32767, 32767, 32767, 32767, 32767,
                                              32767)) + data(128),
        "nii_v2_dims_overflow.nii": nifti2(dims=(3, 1 << 40, 1 << 40, 1 << 40)) + data(128),
        "nii_six_big_axes.nii": nifti1(dims=(6, 2, 2, 2, 2, 2, 2)) + data(128),
        "nii_vox_offset_past_end.nii": nifti1(vox_offset=1.0e6) + data(128),
        "nii_vox_offset_in_header.nii": nifti1(vox_offset=100.0) + data(128),
        "nii_vox_offset_nan.nii": nifti1(vox_offset=float("nan")) + data(128),
        "nii_unknown_datatype.nii": nifti1(datatype=2000) + data(128),
        "nii_rgb24.nii": nifti1(datatype=128, bitpix=24) + data(4 * 4 * 4 * 3),
        "nii_rgba32.nii": nifti1(datatype=2304, bitpix=32) + data(256),
        "nii_complex64.nii": nifti1(datatype=32, bitpix=64) + data(512),
        "nii_uint64.nii": nifti1(datatype=1280, bitpix=64) + data(512),
        "nii_float128.nii": nifti1(datatype=1536, bitpix=128) + data(1024),
        "nii_inf_inter.nii": nifti1(slope=2.0, inter=float("inf")) + data(128),
        "nii_bad_quaternion.nii": nifti1(qform_code=1, sform_code=0, quatern=(0.9, 0.9, 0.0))
        + data(128),
        "nii_v2_bad_eol.nii": nifti2(eol=b"\n\n\n\n") + data(128),
        "nii_v2_truncated_header.nii": nifti2()[:400],
        "nii_missing_img.hdr": nifti1(magic=b"ni1\0", vox_offset=0.0),
    }
    # corrupt gzip: flip bytes inside the deflate stream (past the 10-byte
    # gzip header, before the 8-byte trailer)
    c = bytearray(gz(big_good))
    for k in range(len(c) // 3, len(c) // 3 + 8):
        c[k] ^= 0xA5
    files["nii_corrupt_gzip.nii.gz"] = bytes(c)
    c = bytearray(gz(good))
    c[-8] ^= 0xFF  # CRC
    files["nii_corrupt_gzip_crc.nii.gz"] = bytes(c)
    for name, blob in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)
    print(f"wrote {len(files)} files to {out}")


if __name__ == "__main__":
    main()

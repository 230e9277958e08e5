"""Writes the malformed .npy corpus beside this script (npy_*.npy).

Each file breaks one rule of the format; the C tests (test_npy,
test_bad_corpus) check that loading any of them fails with a message that
names the file. Run: python3 tests/data/bad/npy_make_bad.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def npy(header, data=b"", version=(1, 0), header_len=None, magic=b"\x93NUMPY"):
    h = header.encode("latin1") if isinstance(header, str) else header
    pre = 10 if version[0] == 1 else 12
    pad = (-(pre + len(h) + 1)) % 64
    h = h + b" " * pad + b"\n"
    n = len(h) if header_len is None else header_len
    ln = struct.pack("<H", n) if version[0] == 1 else struct.pack("<I", n)
    return magic + bytes(version) + ln + h + data


def d(descr="'<f4'", fortran="False", shape="(3, 4)"):
    return "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)


GOOD = npy(d(), bytes(48))
CASES = {
    "npy_empty_file.npy": b"",
    "npy_truncated_magic.npy": b"\x93NUM",
    "npy_truncated_header.npy": GOOD[:40],
    "npy_truncated_data.npy": GOOD[:-7],
    "npy_truncated_data_v2.npy": npy(d(shape="(100, 100)"), bytes(1000), version=(2, 0)),
    "npy_wrong_magic.npy": npy(d(), bytes(48), magic=b"\x93NUMPX"),
    "npy_not_npy.npy": b"PK\x03\x04 this is a zip archive, not an array" + bytes(40),
    "npy_broken_dict.npy": npy("{'descr': '<f4' 'fortran_order': False, 'shape': (3, 4), }", bytes(48)),
    "npy_unclosed_dict.npy": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), ", bytes(48)),
    "npy_unterminated_string.npy": npy("{'descr': '<f4, 'fortran_order': False, 'shape': (3, 4)}", bytes(48)),
    "npy_bad_shape_tuple.npy": npy(d(shape="(3, x4)"), bytes(48)),
    "npy_shape_not_tuple.npy": npy(d(shape="[3, 4]"), bytes(48)),
    "npy_shape_int.npy": npy(d(shape="(12)"), bytes(48)),
    "npy_shape_unclosed.npy": npy(d(shape="(3, 4"), bytes(48)),
    "npy_negative_dim.npy": npy(d(shape="(3, -4)"), bytes(48)),
    "npy_dims_overflow.npy": npy(d(shape="(4294967296, 4294967296, 4294967296)"), bytes(48)),
    "npy_dims_bytes_overflow.npy": npy(d(descr="'<f8'", shape="(2305843009213693952,)"), bytes(48)),
    "npy_dim_too_big.npy": npy(d(shape="(99999999999999999999999,)"), bytes(48)),
    "npy_ndim6.npy": npy(d(shape="(1, 1, 1, 1, 1, 1)"), bytes(4)),
    "npy_descr_c8.npy": npy(d(descr="'<c8'", shape="(3,)"), bytes(24)),
    "npy_descr_object.npy": npy(d(descr="'|O'", shape="(3,)"), bytes(24)),
    "npy_descr_u8.npy": npy(d(descr="'<u8'", shape="(3,)"), bytes(24)),
    "npy_descr_unicode.npy": npy(d(descr="'<U4'", shape="(3,)"), bytes(48)),
    "npy_descr_structured.npy": npy(d(descr="[('a', '<i4'), ('b', '<f4')]", shape="(3,)"), bytes(24)),
    "npy_descr_garbage.npy": npy(d(descr="'\x01\xff<f4'", shape="(3,)"), bytes(12)),
    "npy_missing_shape.npy": npy("{'descr': '<f4', 'fortran_order': False, }", bytes(48)),
    "npy_unknown_key.npy": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", bytes(12)),
    "npy_fortran_not_bool.npy": npy(d(fortran="1"), bytes(48)),
    "npy_trailing_garbage.npy": npy(d() + " junk", bytes(48)),
    "npy_header_len_past_end.npy": npy(d(), bytes(48), header_len=60000),
    "npy_header_len_past_end_v2.npy": npy(d(), bytes(48), version=(2, 0), header_len=0xFFFFFFF0),
    "npy_version_9_9.npy": npy(d(), bytes(48), version=(9, 9)),
    "npy_version_1_1.npy": npy(d(), bytes(48), version=(1, 1)),
}

if __name__ == "__main__":
    for name, blob in CASES.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(blob)
    print("wrote %d files" % len(CASES))

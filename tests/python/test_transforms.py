"""Transform builders against NumPy: forward matrices [A | t] in array order (d, h, w)."""
import numpy as np
import pytest

import voxpipe


def m(t):
    return np.asarray(t)


def rodrigues(axis, deg):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    th = np.deg2rad(deg)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def homog(M):
    n = M.shape[0]
    H = np.eye(n + 1)
    H[:n] = M
    return H


def test_rotation_matches_rodrigues_about_a_center(rng):
    for _ in range(20):
        axis = rng.standard_normal(3)
        deg = rng.uniform(-180, 180)
        c = rng.uniform(-10, 50, 3)
        M = m(voxpipe.fn.transform_rotation(angle=deg, axis=list(axis), center=list(c)))
        assert M.shape == (3, 4) and M.dtype == np.float64
        R = rodrigues(axis, deg)
        np.testing.assert_allclose(M[:, :3], R, atol=1e-12)
        np.testing.assert_allclose(M[:, :3] @ c + M[:, 3], c, atol=1e-9)  # the center stays
    M2 = m(voxpipe.fn.transform_rotation(angle=90, ndim=2))
    np.testing.assert_allclose(M2, [[0, -1, 0], [1, 0, 0]], atol=1e-12)


def test_scale_shear_translation(rng):
    s = rng.uniform(0.5, 2, 3)
    c = rng.uniform(0, 20, 3)
    M = m(voxpipe.fn.transform_scale(scale=list(s), center=list(c)))
    np.testing.assert_allclose(M[:, :3], np.diag(s))
    np.testing.assert_allclose(M[:, :3] @ c + M[:, 3], c, atol=1e-12)
    np.testing.assert_allclose(m(voxpipe.fn.transform_scale(scale=[2.0]))[:, :3], 2 * np.eye(3))
    sh = rng.uniform(-0.3, 0.3, 6)
    M = m(voxpipe.fn.transform_shear(shear=list(sh)))
    want = np.eye(3)
    want[0, 1], want[0, 2], want[1, 0], want[1, 2], want[2, 0], want[2, 1] = sh
    np.testing.assert_allclose(M[:, :3], want)
    t = rng.uniform(-5, 5, 3)
    np.testing.assert_allclose(m(voxpipe.fn.transform_translation(offset=list(t))),
                               np.hstack([np.eye(3), t[:, None]]))


def test_combine_applies_first_then_second(rng):
    a = voxpipe.fn.transform_rotation(angle=30.0, axis=[0, 1, 0], center=[5, 5, 5])
    b = voxpipe.fn.transform_translation(offset=[1.0, 2.0, 3.0])
    ab = m(voxpipe.fn.transform_combine(a, b))
    np.testing.assert_allclose(homog(ab), homog(m(b)) @ homog(m(a)), atol=1e-12)


def test_random_transform_ranges_and_determinism():
    outs = voxpipe.fn.random_transform(angles=[10, 0, 0], scale=[0.8, 1.2], center=[4, 4, 4],
                                       batch_size=200, seed=5)
    again = voxpipe.fn.random_transform(angles=[10, 0, 0], scale=[0.8, 1.2], center=[4, 4, 4],
                                        batch_size=200, seed=5)
    scales, angles = [], []
    for o, p in zip(outs, again):
        M, P = m(o), m(p)
        assert M.tobytes() == P.tobytes()
        A = M[:, :3]
        s = np.linalg.norm(A[:, 0])  # isotropic: every column has the scale's length
        np.testing.assert_allclose(np.linalg.norm(A, axis=0), s, rtol=1e-12)
        R = A / s
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(R[0], [1, 0, 0], atol=1e-12)  # only about d
        scales.append(s)
        angles.append(np.degrees(np.arctan2(R[2, 1], R[1, 1])))
        np.testing.assert_allclose(M[:, :3] @ [4, 4, 4] + M[:, 3], [4, 4, 4], atol=1e-9)
    scales, angles = np.array(scales), np.array(angles)
    assert scales.min() >= 0.8 and scales.max() <= 1.2 and scales.std() > 0.08
    assert np.abs(angles).max() <= 10 + 1e-9 and angles.std() > 4
    other = voxpipe.fn.random_transform(angles=[10, 0, 0], batch_size=3, seed=6)
    assert m(other[0]).tobytes() != m(outs[0]).tobytes()


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="axis"):
        voxpipe.fn.transform_rotation(angle=10, axis=[0, 0, 0])
    with pytest.raises(ValueError, match="center"):
        voxpipe.fn.transform_scale(scale=[1, 1, 1], center=[1, 2])
    with pytest.raises(ValueError, match="scale"):
        voxpipe.fn.random_transform(scale=[1.2, 0.8])

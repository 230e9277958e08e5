"""The pointwise intensity operators against NumPy float64 references (the
formulas of MONAI's ScaleIntensityRange/NormalizeIntensity/RandRicianNoise and
a transcription of nnU-Net's (batchgenerators') contrast and gamma
augmentations), on fresh random inputs (seed printed by conftest / below).

Tolerances: float32 outputs within 2e-6 of the output's value range (float32
rounding of a few operations), float16 within one half ulp plus that,
integer outputs exact (the engine computes integer stages in double and rounds
to nearest even, as numpy.rint)."""

import os

import numpy as np
import pytest

import voxpipe

SEED = int(os.environ.get("VP_TEST_SEED", np.random.SeedSequence().entropy % (1 << 31)))
print(f"test_intensity seed {SEED}")


def rng():
    return np.random.default_rng(SEED)


def volume(dtype=np.float32, shape=(3, 9, 10, 11), zeros=0.1):
    r = rng()
    x = (r.random(shape) - 0.3) * 200
    x[r.random(shape) < zeros] = 0
    if np.issubdtype(np.dtype(dtype), np.integer):
        x = np.rint(x)
    return x.astype(dtype)


def close(got, want, what, rel=2e-6):
    got = np.asarray(got).astype(np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, what
    span = float(np.nanmax(want) - np.nanmin(want)) or 1.0
    tol = rel * span + 1e-12
    err = np.abs(got - want)
    k = int(np.argmax(err))
    assert err.max() <= tol, f"{what}: max error {err.max()} at {k} (got {got.flat[k]}, want {want.flat[k]}), tol {tol}"


def test_clamp():
    x = volume()
    got = np.asarray(voxpipe.fn.clamp(x, lo=-3.5, hi=40))
    np.testing.assert_array_equal(got, np.clip(x, -3.5, 40))


@pytest.mark.parametrize("clip", [False, True])
def test_scale_intensity_range(clip):
    x = volume(np.int16)
    got = np.asarray(voxpipe.fn.scale_intensity_range(x, a_min=-57, a_max=164, b_min=-1, b_max=2, clip=clip))
    assert got.dtype == np.float32
    want = (x.astype(np.float64) + 57) / (164 + 57) * 3 - 1
    if clip:
        want = np.clip(want, -1, 2)
    close(got, want, "scale_intensity_range")


@pytest.mark.parametrize("stats", ["sample", "channel"])
@pytest.mark.parametrize("nonzero", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_normalize_computed(stats, nonzero, dtype):
    x = volume(np.float32)
    got = np.asarray(voxpipe.fn.normalize(x, stats=stats, nonzero=nonzero, dtype=dtype))
    assert got.dtype == np.dtype(dtype)
    xd = x.astype(np.float64)
    want = np.zeros_like(xd)
    groups = [slice(None)] if stats == "sample" else [c for c in range(x.shape[0])]
    for g in groups:
        v = xd[g]
        m = v != 0 if nonzero else np.ones(v.shape, bool)
        mean, sd = v[m].mean(), v[m].std()
        w = np.where(m, (v - mean) / max(sd, 1e-8), 0 if nonzero else 0)
        want[g] = w
    close(got, want, f"normalize {stats} nonzero={nonzero}", rel=2e-6 if dtype == "float32" else 1e-3)


def test_normalize_given_and_ct():
    x = volume(np.int16)
    got = np.asarray(voxpipe.fn.normalize(x, stats="given", mean=3.0, std=7.0))
    close(got, (x - 3.0) / 7.0, "normalize given")
    got = np.asarray(voxpipe.fn.ct_normalize(x))
    close(got, (np.clip(x.astype(np.float64), -79, 304) - 101) / 76.9, "ct_normalize")


def test_brightness_and_shift_integers_exact():
    x = volume(np.int16) * 200
    got = np.asarray(voxpipe.fn.brightness(x, factor=1.37))
    np.testing.assert_array_equal(got, np.clip(np.rint(x * 1.37), -32768, 32767).astype(np.int16))
    u = volume(np.uint8, zeros=0.0) if False else np.abs(volume(np.int16)).clip(0, 255).astype(np.uint8)
    got = np.asarray(voxpipe.fn.brightness_shift(u, shift=-20.5))
    np.testing.assert_array_equal(got, np.clip(np.rint(u - 20.5), 0, 255).astype(np.uint8))
    f = volume()
    got = np.asarray(voxpipe.fn.brightness(f, factor=0.7))
    np.testing.assert_array_equal(got, f * np.float32(0.7))


def nnunet_contrast(x, factor, per_channel_stats=True, preserve_range=True):
    """batchgenerators' augment_contrast on one sample (one factor)."""
    x = x.astype(np.float64).copy()
    groups = range(x.shape[0]) if per_channel_stats else [slice(None)]
    for c in groups:
        mn = x[c].mean()
        if preserve_range:
            minm, maxm = x[c].min(), x[c].max()
        x[c] = (x[c] - mn) * factor + mn
        if preserve_range:
            x[c][x[c] < minm] = minm
            x[c][x[c] > maxm] = maxm
    return x


@pytest.mark.parametrize("factor", [0.65, 1.5])
@pytest.mark.parametrize("per_channel", [True, False])
def test_contrast_nnunet(factor, per_channel):
    x = volume()
    got = np.asarray(voxpipe.fn.contrast(x, factor=factor, per_channel=per_channel))
    close(got, nnunet_contrast(x, factor, per_channel), "contrast", rel=4e-6)


def nnunet_gamma(x, gamma, invert, retain, epsilon=1e-7):
    """batchgenerators' augment_gamma on one sample, per_channel=False."""
    d = x.astype(np.float64).copy()
    if invert:
        d = -d
    if retain:
        mn, sd = d.mean(), d.std()
    minm = d.min()
    rnge = d.max() - minm
    d = np.power((d - minm) / float(rnge + epsilon), gamma) * rnge + minm
    if retain:
        d = d - d.mean()
        d = d / (d.std() + 1e-8) * sd
        d = d + mn
    if invert:
        d = -d
    return d


@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("retain", [False, True])
@pytest.mark.parametrize("gamma", [0.7, 1.5])
def test_gamma_nnunet(invert, retain, gamma):
    x = volume()
    got = np.asarray(voxpipe.fn.gamma(x, gamma=gamma, invert=invert, retain_stats=retain))
    close(got, nnunet_gamma(x, gamma, invert, retain), f"gamma {gamma} invert={invert} retain={retain}", rel=1e-5)


def test_gamma_per_channel():
    x = volume()
    got = np.asarray(voxpipe.fn.gamma(x, gamma=1.3, per_channel=True))
    want = np.stack([nnunet_gamma(x[c], 1.3, False, False) for c in range(x.shape[0])])
    close(got, want, "gamma per channel", rel=1e-5)


def test_rician_noise_statistics():
    z = np.zeros((40, 50, 60), np.float64)
    got = np.asarray(voxpipe.fn.rician_noise(z, stddev=2.0, seed=SEED))
    n = got.size
    m, v = got.mean(), got.var()
    want_m, want_v = 2 * np.sqrt(np.pi / 2), (4 - np.pi) / 2 * 4
    assert abs(m - want_m) < 5 * np.sqrt(want_v / n), (m, want_m)
    mu4 = (32 - 3 * np.pi**2) / 4 * 16
    assert abs(v - want_v) < 5 * np.sqrt((mu4 - want_v**2) / n), (v, want_v)
    again = np.asarray(voxpipe.fn.rician_noise(z, stddev=2.0, seed=SEED))
    np.testing.assert_array_equal(got, again)


def test_probability_binomial():
    n = 300
    x = [np.arange(1, 9, dtype=np.float32) for _ in range(n)]
    for op, kw in [("brightness", {"factor": 2.0}), ("contrast", {"factor": 2.0}), ("gamma", {"gamma": 2.0})]:
        outs = getattr(voxpipe.fn, op)(x, p=0.25, seed=SEED, **kw)
        changed = sum(not np.array_equal(np.asarray(o), a) for o, a in zip(outs, x))
        assert abs(changed - n * 0.25) < 5 * np.sqrt(n * 0.25 * 0.75), (op, changed)


@pytest.mark.parametrize("stats", ["sample", "channel"])
@pytest.mark.parametrize("outside", ["zero", "keep"])
@pytest.mark.parametrize("mask_kind", ["spatial", "one", "per_channel"])
def test_normalize_masked(stats, outside, mask_kind):
    """normalize(x, mask=m): statistics over the mask's nonzero voxels (a mask of the
    spatial shape, with one channel in front, or one per channel; int16 with negative
    values counts as inside), the rest 0 or kept: numpy float64, float32 tolerance
    inside, exact outside."""
    x = volume(np.float32)
    r = np.random.default_rng(SEED + 7)
    sp = x.shape[1:]
    shape = {"spatial": sp, "one": (1,) + sp, "per_channel": x.shape}[mask_kind]
    m = np.where(r.random(shape) < 0.6, r.integers(-5, 6, shape), 0).astype(np.int16)
    got = np.asarray(voxpipe.fn.normalize(x, mask=m, stats=stats, outside=outside))
    assert got.dtype == np.float32 and got.shape == x.shape
    inside = np.broadcast_to(m != 0, x.shape)
    xd = x.astype(np.float64)
    want = np.zeros_like(xd)
    for g in [slice(None)] if stats == "sample" else range(x.shape[0]):
        v, mm = xd[g], inside[g]
        mean, sd = v[mm].mean(), v[mm].std()
        want[g] = np.where(mm, (v - mean) / max(sd, 1e-8), v if outside == "keep" else 0)
    close(got, want, f"normalize mask {mask_kind} {stats} {outside}")
    np.testing.assert_array_equal(got[~inside], want[~inside].astype(np.float32))
    if voxpipe._voxpipe.cuda_device_count() > 0:
        g = voxpipe.fn.normalize(x, mask=m, stats=stats, outside=outside, device="gpu")
        close(np.asarray(g.to("cpu")), want, f"normalize mask {mask_kind} {stats} {outside} (GPU)")


def test_normalize_masked_errors():
    x = volume(np.float32)
    with pytest.raises(Exception, match="mask of shape"):
        voxpipe.fn.normalize(x, mask=np.ones((2, 2, 2), np.uint8))

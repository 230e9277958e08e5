"""The MLPerf UNet3D (KiTS19) reference loader, re-implemented: NumPy/SciPy transforms in a
torch DataLoader with worker processes, as mlcommons/training's image_segmentation does.

Training chain per sample (whole case read with np.load, as the reference does):
  biased crop to the patch (p `oversampling` = 0.4: a class present among 1, 2 picked
  uniformly, its 6-connected components labelled with scipy.ndimage.label, the 2 largest by
  box volume kept, one picked uniformly, a window placed at random so that it holds the box
  (or lies inside it when the box is larger); otherwise a uniform random window)
  -> flip each spatial axis with p 1/3 (image and label together)
  -> cast (float32, uint8)
  -> brightness: x * U(0.7, 1.3) with p 0.1
  -> gaussian noise: + N(0, s^2), s ~ U(0, 0.1), with p 0.1.
The "heavy" variant inserts after the crop one resampling of the patch that rotates
(p HEAVY["p_rotation"], uniform angles in +-HEAVY["angle"] degrees about each axis, about the
patch centre) and deforms elastically (p HEAVY["p_elastic"]: a coarse grid of N(0, magnitude^2)
control displacements every grid_spacing voxels, upsampled with cubic splines by
scipy.ndimage.zoom), sampled with scipy.ndimage.map_coordinates (image linear, label nearest,
0 outside), the way batchgenerators' spatial transform does.

Cases smaller than the patch are padded (image edge, label 0), as the reference's
preprocessing pads every case to >= 128 per axis.

    ds = MLPerfDataset(pairs, patch=(128,) * 3, heavy=False)
    dl = make_loader(pairs, batch_size=2, workers=16, heavy=False)   # infinite, pinned
"""
import math
import os

import numpy as np
import scipy.ndimage as ndi
import torch

# The heavy chain's parameters, shared with the voxpipe and MONAI versions in
# train_unet3d.py so all three loaders do the same work.
HEAVY = dict(p_rotation=0.5, angle=15.0, p_elastic=0.5, grid_spacing=32, magnitude=4.0)


def _randrange(rng, n):
    return 0 if n <= 0 else int(rng.integers(0, n))


def _pad_to(x, y, patch):
    need = [max(0, p - s) for p, s in zip(patch, x.shape[1:])]
    if not any(need):
        return x, y
    w = [(0, 0)] + [(0, n) for n in need]
    return np.pad(x, w, mode="edge"), np.pad(y, w)


def random_window(rng, shape, patch):
    """Uniform anchor of a patch inside shape (both spatial)."""
    return [_randrange(rng, s - p + 1) for s, p in zip(shape, patch)]


def _window_around(rng, lo, hi, extent, p):
    """Anchor a of a window [a, a+p) within [0, extent) that holds [lo, hi) when the box fits
    (hi - lo <= p), or lies inside it otherwise; uniform over the admissible anchors."""
    if hi - lo <= p:
        a_lo, a_hi = hi - p, lo
    else:
        a_lo, a_hi = lo, hi - p
    a_lo, a_hi = max(0, a_lo), min(extent - p, a_hi)
    if a_hi < a_lo:  # cannot happen for extent >= p; keep the window inside anyway
        a_lo = a_hi = max(0, min(extent - p, a_lo))
    return a_lo + _randrange(rng, a_hi - a_lo + 1)


def foreground_window(rng, label, patch, classes=(1, 2), k_largest=2):
    """The reference's foreground crop: returns an anchor, or None when no class of `classes`
    is present. label: (D, H, W) integer."""
    present = [c for c in np.unique(label) if c in classes]
    if not present:
        return None
    c = present[_randrange(rng, len(present))]
    comp, n = ndi.label(label == c)  # default structure: 6-connectivity in 3-D
    boxes = [b for b in ndi.find_objects(comp) if b is not None]
    if not boxes:
        return None
    vol = [np.prod([s.stop - s.start for s in b]) for b in boxes]
    keep = [boxes[i] for i in np.argsort(vol, kind="stable")[-k_largest:]]
    box = keep[_randrange(rng, len(keep))]
    return [_window_around(rng, s.start, s.stop, e, p)
            for s, e, p in zip(box, label.shape, patch)]


def _elastic_field(rng, patch, grid_spacing, magnitude):
    """Displacement (3, *patch) in voxels: coarse normal control values upsampled (cubic)."""
    g = [max(2, int(math.ceil(p / grid_spacing)) + 1) for p in patch]
    ctrl = rng.normal(0.0, magnitude, size=(3, *g))
    return np.stack([ndi.zoom(c, [p / n for p, n in zip(patch, g)], order=3, mode="nearest",
                              grid_mode=True)[:patch[0], :patch[1], :patch[2]] for c in ctrl])


def _rotation(angles_deg):
    a, b, c = np.deg2rad(angles_deg)
    rd = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rh = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rw = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rd @ rh @ rw


def spatial_heavy(rng, x, y, heavy=HEAVY):
    """Rotation and elastic deformation of a patch in one map_coordinates pass (or none)."""
    rot = rng.random() < heavy["p_rotation"]
    ela = rng.random() < heavy["p_elastic"]
    if not (rot or ela):
        return x, y
    patch = x.shape[1:]
    ctr = np.array([(p - 1) / 2 for p in patch])
    grid = np.stack(np.meshgrid(*[np.arange(p, dtype=np.float32) for p in patch],
                                indexing="ij"))  # (3, D, H, W)
    coords = grid
    if ela:
        coords = coords + _elastic_field(rng, patch, heavy["grid_spacing"],
                                         heavy["magnitude"]).astype(np.float32)
    if rot:
        m = _rotation(rng.uniform(-heavy["angle"], heavy["angle"], 3)).astype(np.float32)
        flat = coords.reshape(3, -1) - ctr[:, None].astype(np.float32)
        coords = (m @ flat + ctr[:, None].astype(np.float32)).reshape(3, *patch)
    xo = np.stack([ndi.map_coordinates(c, coords, order=1, mode="constant", cval=0.0)
                   for c in x])
    yo = np.stack([ndi.map_coordinates(c, coords, order=0, mode="constant", cval=0)
                   for c in y])
    return xo, yo


class MLPerfDataset(torch.utils.data.Dataset):
    """Samples of the reference chain. pairs: [(image.npy, label.npy)]; length: samples per
    epoch (cases are cycled). Labels keep their (1, D, H, W) layout. Every worker draws from
    its own NumPy generator (seeded from torch's per-worker seed: the reference's global
    np.random state would repeat the same draws in every forked worker)."""

    def __init__(self, pairs, patch=(128, 128, 128), oversampling=0.4, heavy=False, length=None,
                 seed=0):
        self.pairs, self.patch = list(pairs), tuple(patch)
        self.oversampling, self.heavy = oversampling, heavy
        self.length = length or len(self.pairs)
        self.seed = seed
        self._rng, self._pid = None, None

    def __len__(self):
        return self.length

    def rng(self):
        if self._pid != os.getpid():
            info = torch.utils.data.get_worker_info()
            s = info.seed if info is not None else self.seed
            self._rng, self._pid = np.random.default_rng(s % 2**63), os.getpid()
        return self._rng

    def crop(self, rng, x, y):
        x, y = _pad_to(x, y, self.patch)
        a = None
        if rng.random() < self.oversampling:
            a = foreground_window(rng, y[0], self.patch)
        if a is None:
            a = random_window(rng, x.shape[1:], self.patch)
        sl = (slice(None),) + tuple(slice(s, s + p) for s, p in zip(a, self.patch))
        return x[sl], y[sl]

    def transform(self, x, y):
        rng = self.rng()
        x, y = self.crop(rng, x, y)
        if self.heavy:
            x, y = spatial_heavy(rng, x, y)
        for ax in (1, 2, 3):
            if rng.random() < 1 / 3:
                x, y = np.flip(x, ax), np.flip(y, ax)
        x, y = x.astype(np.float32), y.astype(np.uint8)
        if rng.random() < 0.1:
            x = x * np.float32(rng.uniform(0.7, 1.3))
        if rng.random() < 0.1:
            s = rng.uniform(0.0, 0.1)
            x = x + rng.normal(0.0, s, x.shape).astype(np.float32)
        return np.ascontiguousarray(x), np.ascontiguousarray(y)

    def __getitem__(self, i):
        xp, yp = self.pairs[i % len(self.pairs)]
        return self.transform(np.load(xp), np.load(yp))


def make_loader(pairs, batch_size=2, workers=16, heavy=False, patch=(128,) * 3,
                oversampling=0.4, seed=0, prefetch_factor=2):
    """An endless iterator of pinned (image, label) CPU batches: DataLoader epochs back to back
    (shuffled, drop_last) with persistent workers, as the reference trains."""
    ds = MLPerfDataset(pairs, patch=patch, oversampling=oversampling, heavy=heavy,
                       length=max(len(pairs), 64 * batch_size), seed=seed)
    kw = dict(num_workers=workers, persistent_workers=True, prefetch_factor=prefetch_factor) \
        if workers > 0 else {}
    g = torch.Generator()
    g.manual_seed(seed)
    dl = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True,
                                     pin_memory=torch.cuda.is_available(), generator=g, **kw)

    def batches():
        while True:
            for x, y in dl:
                yield x, y

    return batches()


def _self_check(trials=200, seed=0):
    """Windows of the foreground crop hold a small object whole, lie inside a large one, and
    stay inside the volume; uniform windows stay inside the volume."""
    rng = np.random.default_rng(seed)
    patch = (16, 16, 16)
    for t in range(trials):
        shape = tuple(int(v) for v in rng.integers(17, 40, 3))
        lab = np.zeros(shape, np.uint8)
        big = t % 2 == 1
        ext = [int(rng.integers(17, s + 1)) if big else int(rng.integers(1, 10)) for s in shape]
        lo = [int(rng.integers(0, s - e + 1)) for s, e in zip(shape, ext)]
        lab[tuple(slice(a, a + e) for a, e in zip(lo, ext))] = 1
        a = foreground_window(rng, lab, patch)
        assert a is not None
        for k in range(3):
            assert 0 <= a[k] <= shape[k] - patch[k], (shape, a)
            if ext[k] <= patch[k]:
                assert a[k] <= lo[k] and lo[k] + ext[k] <= a[k] + patch[k], (k, lo, ext, a)
            else:
                assert lo[k] <= a[k] and a[k] + patch[k] <= lo[k] + ext[k], (k, lo, ext, a)
        w = random_window(rng, shape, patch)
        assert all(0 <= w[k] <= shape[k] - patch[k] for k in range(3))
    assert foreground_window(rng, np.zeros((20, 20, 20), np.uint8), patch) is None
    print(f"mlperf_ref_loader: {trials} crops checked")


if __name__ == "__main__":
    _self_check()

"""voxpipe: load 3D medical volumes (NIfTI, NumPy) and augment them on the GPU.

    >>> import voxpipe, numpy as np, torch
    >>> t = voxpipe.load("BRATS_001.nii.gz")          # host memory, no copy out
    >>> t.shape, t.dtype, t.spacing                   # ((4, 155, 240, 240), 'int16', (1.0, 1.0, 1.0))
    >>> a = np.asarray(t)                             # NumPy view of the same memory
    >>> g = torch.from_dlpack(t.to("gpu"))            # a CUDA tensor, no copy
    >>> voxpipe.save("out.nii.gz", a, spacing=t.spacing, affine=t.affine)

Axes are channel-first, spatial last, C order: NIfTI's (x, y, z, t) becomes
(t, z, y, x), spacing is (dz, dy, dx), and the affine stays NIfTI's
voxel (i, j, k) -> world (x, y, z) matrix. See docs/conventions.md.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

from . import _voxpipe as _C
from ._tensor import Tensor, _as_tensor, _MEM_DEVICE
from .pipeline import DataNode, Pipeline, TensorList
from . import fn


def fn_chain(inputs, ops, seed: int = 0, device: Optional[str] = None):
    """voxpipe.fn.chain: pointwise operators as one fused pass (see its doc)."""
    return fn.chain(inputs, ops, seed=seed, device=device)

__all__ = [
    "Tensor",
    "TensorList",
    "Pipeline",
    "DataNode",
    "fn",
    "fn_chain",
    "VoxpipeError",
    "load",
    "save",
    "file_info",
    "synth_case",
    "io_bytes_read",
    "io_reset_bytes_read",
    "cuda_device_count",
    "__version__",
]

VoxpipeError = _C.VoxpipeError
__version__ = _C.version().split()[0]

_OOB = {"error": 0, "pad": 1, "trim": 2}


def load(
    path,
    roi: Optional[Tuple[Sequence[int], Sequence[int]]] = None,
    *,
    raw: bool = False,
    oob: str = "error",
    fill: float = 0.0,
    mmap: bool = False,
    device: str = "cpu",
) -> Tensor:
    """Reads a .npy, .nii, .nii.gz or .hdr/.img volume.

    roi: (start, shape) in array order; fewer values than axes name the
    trailing (spatial) axes. Only the bytes of the region are read from
    uncompressed files. oob: "error", "pad" (with ``fill``) or "trim" for
    regions that leave the volume. raw: keep NIfTI's stored values
    (ignore scl_slope/scl_inter). device: "cpu" or "gpu[:N]".
    """
    if oob not in _OOB:
        raise ValueError(f"oob: {oob!r} is not one of {sorted(_OOB)}")
    start = shape = None
    if roi is not None:
        try:
            start, shape = roi
        except (TypeError, ValueError):
            raise ValueError("roi: expected (start, shape)") from None
    t = Tensor(_C.load(str(path), start, shape, _OOB[oob], float(fill), bool(raw), bool(mmap)))
    return t if device == "cpu" else t.to(device)


def save(path, data, spacing=None, affine=None, *, compress_level: int = 6, threads: int = 0):
    """Writes a tensor or any array (NumPy, DLPack) as .npy, .nii or .nii.gz.

    spacing (array order, e.g. (dz, dy, dx)) and affine (4x4) override the
    tensor's own. The file appears whole or not at all.
    """
    t = _as_tensor(data)
    if t.device.startswith("gpu"):
        t = t.cpu()
    if spacing is not None or affine is not None:
        aff = None
        if affine is not None:
            import numpy as np

            aff = np.asarray(affine, dtype=np.float64)
            if aff.shape != (4, 4):
                raise ValueError(f"affine: expected a 4x4 matrix, got shape {aff.shape}")
            aff = tuple(aff.ravel())
        _C.set_meta(t._h, None if spacing is None else tuple(float(s) for s in spacing), aff)
    _C.save(str(path), t._h, compress_level, threads)


def file_info(path) -> dict:
    """Header facts of a file without reading its data."""
    return _C.file_info(str(path))


_SYNTH_KINDS = {"brats": 0, "kits": 1}


def synth_case(kind: str = "brats", seed: int = 0, case: int = 0, shape=None, scale: float = 0.0,
               threads: int = 0) -> Tuple[Tensor, Tensor]:
    """One synthetic case (image [C, D, H, W] int16, label [D, H, W] uint8)."""
    if kind not in _SYNTH_KINDS:
        raise ValueError(f"kind: {kind!r} is not 'brats' or 'kits'")
    img, lbl = _C.synth_case(_SYNTH_KINDS[kind], seed, case, shape, scale, threads)
    return Tensor(img), Tensor(lbl)


def io_bytes_read() -> int:
    """Bytes this thread has read from files since the last reset."""
    return _C.io_bytes_read()


def io_reset_bytes_read() -> None:
    _C.io_reset_bytes_read()


def cuda_device_count() -> int:
    return _C.cuda_device_count()

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

__all__ = [
    "Tensor",
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

_MEM_HOST, _MEM_PINNED, _MEM_DEVICE = 0, 1, 2
_OOB = {"error": 0, "pad": 1, "trim": 2}
# DLPack device types
_KDLCPU, _KDLCUDA, _KDLCUDAHOST = 1, 2, 3


class Tensor:
    """One volume in host, pinned or GPU memory, with spacing and affine.

    Implements ``__dlpack__``/``__dlpack_device__`` (so ``numpy.from_dlpack``,
    ``torch.from_dlpack``, CuPy and JAX take it without a copy) and
    ``__array__`` for host memory. The memory lives as long as any consumer
    holds it.
    """

    __slots__ = ("_h",)

    def __init__(self, handle):
        self._h = handle

    # -- metadata -----------------------------------------------------------
    @property
    def shape(self) -> Tuple[int, ...]:
        return _C.info(self._h)[0]

    @property
    def dtype(self) -> str:
        """NumPy's name of the element type ("int16", "float32", ...)."""
        return _C.info(self._h)[1]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def spacing(self) -> Tuple[float, ...]:
        """Voxel size of the spatial axes in array order (dz, dy, dx)."""
        return _C.info(self._h)[2]

    @property
    def affine(self):
        """4x4 voxel (i, j, k) -> world (x, y, z) matrix, as a NumPy array."""
        import numpy as np

        return np.array(_C.info(self._h)[3], dtype=np.float64).reshape(4, 4)

    @property
    def device(self) -> str:
        """"cpu", "cpu-pinned" or "gpu:N"."""
        _, _, _, _, mem, dev = _C.info(self._h)
        return {_MEM_HOST: "cpu", _MEM_PINNED: "cpu-pinned"}.get(mem, f"gpu:{dev}")

    def __repr__(self) -> str:
        return (
            f"voxpipe.Tensor(shape={self.shape}, dtype={self.dtype}, "
            f"spacing={self.spacing}, device={self.device!r})"
        )

    # -- moving ---------------------------------------------------------------
    def to(self, device: str) -> "Tensor":
        """A copy in "cpu", "cpu-pinned", "gpu" or "gpu:N" memory."""
        if device == "cpu":
            mem, dev = _MEM_HOST, 0
        elif device == "cpu-pinned":
            mem, dev = _MEM_PINNED, 0
        elif device in ("gpu", "cuda"):
            mem, dev = _MEM_DEVICE, 0
        elif device.startswith(("gpu:", "cuda:")):
            mem, dev = _MEM_DEVICE, int(device.split(":", 1)[1])
        else:
            raise ValueError(f"device: {device!r} is not 'cpu', 'cpu-pinned' or 'gpu[:N]'")
        return Tensor(_C.copy_to(self._h, mem, dev))

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device: int = 0) -> "Tensor":
        return self.to(f"gpu:{device}")

    # -- DLPack and NumPy ---------------------------------------------------------
    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        # voxpipe's copies are synchronous, so any consumer stream may use
        # the data at once; an unversioned capsule is what every consumer reads.
        if copy:
            raise BufferError("voxpipe.Tensor.__dlpack__: copy=True is not supported")
        return _C.to_dlpack(self._h)

    def __dlpack_device__(self):
        _, _, _, _, mem, dev = _C.info(self._h)
        if mem == _MEM_DEVICE:
            return (_KDLCUDA, dev)
        return (_KDLCUDAHOST, 0) if mem == _MEM_PINNED else (_KDLCPU, 0)

    def __array__(self, dtype=None, copy=None):
        import numpy as np

        if self.device.startswith("gpu"):
            raise TypeError("voxpipe.Tensor is in GPU memory: call .cpu() first")
        a = np.from_dlpack(self) if self.device == "cpu" else np.from_dlpack(self.cpu())
        if dtype is not None and np.dtype(dtype) != a.dtype:
            return a.astype(dtype)
        if copy:
            return a.copy()
        return a

    def numpy(self):
        """A NumPy view of host memory (no copy)."""
        return self.__array__()


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


def _as_tensor(obj) -> Tensor:
    if isinstance(obj, Tensor):
        # a second handle on the same memory, so metadata can differ
        h = _C.from_dlpack(obj.__dlpack__())
        _C.set_meta(h, obj.spacing, tuple(obj.affine.ravel()))
        return Tensor(h)
    if hasattr(obj, "__dlpack__") and not _is_numpy(obj):
        return Tensor(_C.from_dlpack(obj.__dlpack__()))
    import numpy as np

    a = np.asarray(obj)
    if a.dtype == np.bool_:
        a = a.view(np.uint8)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if not a.flags.c_contiguous:
        a = a.copy(order="C")  # np.ascontiguousarray would make a 0-D array 1-D
    return Tensor(_C.from_dlpack(a.__dlpack__()))


def _is_numpy(obj) -> bool:
    return type(obj).__module__ == "numpy"


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

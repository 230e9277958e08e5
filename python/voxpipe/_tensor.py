"""voxpipe.Tensor and conversions from other arrays (internal module)."""

from __future__ import annotations

from typing import Optional, Tuple

from . import _voxpipe as _C

_MEM_HOST, _MEM_PINNED, _MEM_DEVICE = 0, 1, 2
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



def _as_tensor(obj) -> Tensor:
    if isinstance(obj, Tensor):
        # a second handle on the same memory, so metadata can differ
        h = _C.from_dlpack(obj.__dlpack__())
        _C.set_meta(h, obj.spacing, tuple(obj.affine.ravel()))
        return Tensor(h)
    if type(obj).__module__ == "torch" and type(obj).__name__ == "Tensor":
        t = _from_torch(obj)
        if t is not None:
            return t
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


# torch dtypes voxpipe holds, by their names after "torch."
_TORCH_DTYPES = {"float32", "float16", "float64", "uint8", "int8", "int16", "uint16", "int32",
                 "uint32", "int64"}


def _from_torch(t) -> Optional["Tensor"]:
    """A handle on a contiguous CPU or CUDA torch tensor's memory, which the
    handle keeps alive. A fresh __dlpack__ export per eager call measured
    ~50 us of wall time on the H100 host; reading the pointer is what it
    amounts to for contiguous tensors. None: take DLPack (strides, bool,
    autograd tensors, other devices)."""
    name = str(t.dtype)[6:]
    if (name not in _TORCH_DTYPES or t.requires_grad or not t.is_contiguous()
            or t.numel() == 0):
        return None
    dev = t.device
    if dev.type == "cuda":
        mem, index = _MEM_DEVICE, dev.index if dev.index is not None else 0
    elif dev.type == "cpu":
        mem, index = _MEM_HOST, 0
    else:
        return None
    return Tensor(_C.wrap_ptr(t.data_ptr(), tuple(t.shape), name, mem, index, t))


def _is_numpy(obj) -> bool:
    return type(obj).__module__ == "numpy"



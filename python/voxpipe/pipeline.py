"""voxpipe.Pipeline: a graph of operators that prepares batches ahead of the consumer.

    pipe = voxpipe.Pipeline(batch_size=2, num_threads=4, device_id=0, seed=42)
    with pipe:
        img, lbl = voxpipe.fn.readers.dataset(dataset_json="data/dataset.json", shuffle=True)
        img = voxpipe.fn.slice(img, anchor=[0, 0, 0], shape=[128, 128, 128], device="gpu")
        flip = voxpipe.fn.coin_flip(probability=0.5)
        img = voxpipe.fn.flip(img, horizontal=flip, device="gpu")
        pipe.set_outputs(img)
    pipe.build()
    (images,) = pipe.run()       # a list of batch_size voxpipe.Tensor on the GPU

The graph API follows NVIDIA DALI's: nodes are made by calling
``voxpipe.fn.<op>`` inside ``with pipe:``; an argument is a constant or
another node's output (one value per sample).
"""

from __future__ import annotations

import json
import math
import os
import threading
from typing import Dict, List, Optional, Sequence, Tuple

from . import _voxpipe as _C
from ._tensor import Tensor

_OOB = {"error": 0, "pad": 1, "trim": 2}


class DataNode:
    """A named output of a pipeline node (a symbol while the graph is built)."""

    __slots__ = ("name", "pipe")

    def __init__(self, name: str, pipe: "Pipeline"):
        self.name = name
        self.pipe = pipe

    def __repr__(self) -> str:
        return f"DataNode({self.name!r})"


class TensorList(list):
    """One output of a batch: a list of per-sample voxpipe.Tensor (shapes may differ)."""

    def as_tensor(self) -> Tensor:
        """The samples as one [N, ...] Tensor without a copy, when they share a shape
        and lie back to back in memory (a pipeline's batches do when each sample's
        size is a multiple of 256 bytes); raises ValueError otherwise."""
        return Tensor(_C.stack_view([t._h for t in self]))


class Pipeline:
    """A voxpipe pipeline (see the module docstring).

    batch_size: samples per batch. num_threads: CPU threads for reading and CPU
    operators (0 = all cores). device_id: the GPU for ``device="gpu"`` nodes
    (None = CPU only; default: GPU 0 when there is one). seed: every random
    value derives from it. prefetch_queue_depth: batches prepared ahead.
    skip_bad_samples: replace a case that fails to load by the next one, with a
    warning, instead of failing the run. fuse_pointwise: run consecutive pointwise
    operators (cast, brightness, contrast, noise, normalize, ...) as one pass over
    the voxels (the same bytes as one by one; False runs them one by one).
    """

    _local = threading.local()

    def __init__(self, batch_size: int, num_threads: int = 0, device_id: Optional[int] = -1,
                 seed: int = 0, prefetch_queue_depth: int = 2, skip_bad_samples: bool = False,
                 fuse_pointwise: bool = True):
        if device_id == -1:  # default: the first GPU when there is one
            device_id = 0 if _C.cuda_device_count() > 0 else None
        self.batch_size = int(batch_size)
        self.device_id = device_id
        self.seed = int(seed)
        self._h = _C.pipeline_create(self.batch_size, int(num_threads),
                                     -1 if device_id is None else int(device_id), self.seed,
                                     int(prefetch_queue_depth), int(bool(skip_bad_samples)),
                                     int(bool(fuse_pointwise)))
        self._names: set = set()
        self._counter = 0
        self._outputs: Optional[List[str]] = None
        self._built = False
        self._has_reader = False

    # -- graph building -----------------------------------------------------
    @classmethod
    def current(cls) -> Optional["Pipeline"]:
        stack = getattr(cls._local, "stack", None)
        return stack[-1] if stack else None

    def __enter__(self) -> "Pipeline":
        if not hasattr(Pipeline._local, "stack"):
            Pipeline._local.stack = []
        Pipeline._local.stack.append(self)
        return self

    def __exit__(self, *exc) -> None:
        Pipeline._local.stack.pop()

    def _new_name(self, op: str, k: int) -> str:
        while True:
            self._counter += 1
            name = f"{op}_{self._counter}" + (f".{k}" if k else "")
            if name not in self._names:
                self._names.add(name)
                return name

    def _add_reader(self, source: dict, roi, labels: bool, crop=None, cache_bytes: int = 0,
                    cache_device: str = "cpu") -> Tuple[DataNode, ...]:
        if self._has_reader:
            raise ValueError("a pipeline has one reader")
        img = self._new_name("reader", 0)
        lbl = self._new_name("reader", 1) if labels else None
        _C.pipeline_add_reader(self._h, source, roi, img, lbl)
        if crop is not None:
            _C.pipeline_set_reader_crop(self._h, [int(x) for x in crop])
        if cache_bytes:
            if cache_device not in ("cpu", "gpu"):
                raise ValueError(f"cache_device: {cache_device!r} is not 'cpu' or 'gpu'")
            _C.pipeline_set_reader_cache(self._h, int(cache_bytes), cache_device == "gpu")
        self._has_reader = True
        return (DataNode(img, self), DataNode(lbl, self)) if labels else (DataNode(img, self),)

    def _add_node(self, op: str, num_outputs: int, inputs: Sequence[DataNode], device: str,
                  args: dict) -> Tuple[DataNode, ...]:
        for x in inputs:
            if not isinstance(x, DataNode) or x.pipe is not self:
                raise TypeError(f"{op}: inputs inside 'with pipe:' must be nodes of this pipeline")
        outs = [self._new_name(op, k) for k in range(num_outputs)]
        _C.pipeline_add_node(self._h, op, device, [x.name for x in inputs],
                             _args_json(op, args, self), outs)
        return tuple(DataNode(n, self) for n in outs)

    def set_outputs(self, *nodes: DataNode) -> None:
        names = []
        for n in nodes:
            if not isinstance(n, DataNode) or n.pipe is not self:
                raise TypeError("set_outputs: expected nodes of this pipeline")
            names.append(n.name)
        _C.pipeline_set_outputs(self._h, names)
        self._outputs = names

    def build(self) -> None:
        if not self._built:
            _C.pipeline_build(self._h)
            self._built = True

    # -- running ----------------------------------------------------------------
    @property
    def num_outputs(self) -> int:
        return _C.pipeline_info(self._h)[0]

    @property
    def epoch_size(self) -> int:
        """Samples per epoch of this pipeline's shard (with padding)."""
        return _C.pipeline_info(self._h)[2]

    def __len__(self) -> int:
        """Batches per epoch."""
        return math.ceil(self.epoch_size / self.batch_size)

    def _run(self) -> Tuple[List[TensorList], bool]:
        self.build()
        handles, end = _C.pipeline_run(self._h)
        n, b = self.num_outputs, self.batch_size
        outs = [TensorList(Tensor(h) for h in handles[k * b:(k + 1) * b]) for k in range(n)]
        return outs, end

    def run(self) -> Tuple[TensorList, ...]:
        """The next batch: one TensorList per output."""
        return tuple(self._run()[0])

    def cache_stats(self) -> Dict[str, int]:
        """The reader cache's use: bytes, entries (cases), hits, misses."""
        return _C.pipeline_cache_stats(self._h)

    def state_dict(self) -> Dict[str, int]:
        """Where the next batch comes from: reader position and RNG iteration."""
        e, i, it = _C.pipeline_get_state(self._h)
        return {"epoch": e, "index": i, "iteration": it}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        """Resume: the next batches are the ones the saved pipeline would have given."""
        _C.pipeline_set_state(self._h, int(state["epoch"]), int(state["index"]),
                              int(state["iteration"]))

    @classmethod
    def from_file(cls, path, **overrides) -> "Pipeline":
        """Builds a pipeline from a pipeline file (docs/pipelines.md); keyword
        arguments (batch_size, num_threads, device, seed, ...) override the file's
        "pipeline" options."""
        path = os.fspath(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self = cls.__new__(cls)
        self._h = _C.pipeline_from_json(text, path, json.dumps(overrides) if overrides else None)
        self.batch_size = _C.pipeline_info(self._h)[1]
        self.device_id = overrides.get("device")
        self.seed = overrides.get("seed", 0)
        self._names, self._counter, self._outputs = set(), 0, None
        self._built, self._has_reader = True, True
        return self


def _json_value(op: str, key: str, v, pipe: Optional[Pipeline]):
    if isinstance(v, DataNode):
        if pipe is None or v.pipe is not pipe:
            raise TypeError(f"{op}: argument '{key}' is a node of another pipeline")
        return {"node": v.name}
    try:
        import numpy as np

        if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
            return np.dtype(v).name
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, np.ndarray):
            return v.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, tuple):
        return list(v)
    return v


def _args_json(op: str, args: dict, pipe: Optional[Pipeline]) -> Optional[str]:
    if not args:
        return None
    # plain Python values (the usual eager call) encode as they are; nodes and
    # NumPy values make json refuse them, and take the conversion
    try:
        return json.dumps(args)
    except TypeError:
        return json.dumps({k: _json_value(op, k, v, pipe) for k, v in args.items()})

"""voxpipe.fn: every registered operator as a function, generated from the registry.

Inside ``with pipe:`` a call adds a node to the pipeline and returns its
output node(s); outside, it runs at once ("eagerly") on a voxpipe.Tensor, a
NumPy array or any DLPack tensor (or a list of them: one batch), on the
device where the data is, and returns Tensors:

    flipped = voxpipe.fn.flip(np_volume, horizontal=True)
    noisy = voxpipe.fn.gaussian_noise(volume_on_gpu, stddev=0.1, seed=3)

``voxpipe.fn.readers.dataset`` (aliases ``nifti`` and ``numpy``) is the
dataset reader node.
"""

from __future__ import annotations

import json
import os
import sys
import types
from typing import Optional

from . import _voxpipe as _C
from ._tensor import Tensor, _as_tensor
from .pipeline import DataNode, Pipeline, _args_json

_OOB = {"error": 0, "pad": 1, "trim": 2}


def _describe(name: str) -> dict:
    return json.loads(_C.ops_describe(name))


def _docstring(d: dict) -> str:
    lines = [d["doc"], ""]
    ins = ", ".join(d.get("inputs", [])) or "none"
    outs = ", ".join(d.get("outputs", []))
    lines.append(f"Inputs: {ins}. Outputs: {outs}.")
    lines.append("Runs on: CPU" + (" and GPU" if d.get("gpu") else "") + ".")
    if d.get("args"):
        lines += ["", "Arguments:"]
    for a in d.get("args", []):
        facts = [a["type"]]
        if "default" in a:
            facts.append(f"default {json.dumps(a['default'])}")
        else:
            facts.append("required")
        if "min" in a or "max" in a:
            facts.append(f"in [{a.get('min')}, {a.get('max')}]")
        if a.get("choices"):
            facts.append("one of " + "|".join(a["choices"]) if isinstance(a["choices"], list)
                         else f"one of {a['choices']}")
        if a.get("per_sample"):
            facts.append("per sample (a constant or a node)")
        lines.append(f"    {a['name']} ({', '.join(facts)}): {a.get('doc', '')}")
    lines += ["", "Pipeline use: device=\"cpu\"|\"gpu\". Eager use: seed=N for random operators."]
    return "\n".join(lines)


def _flatten_inputs(op: str, inputs):
    """Eager inputs: each a tensor-like or a list (a batch). Returns (handles
    ordered input-major, batch size, whether lists were given)."""
    batched = [isinstance(x, (list, tuple)) for x in inputs]
    if any(batched) and not all(batched):
        raise TypeError(f"{op}: give all inputs as single tensors or all as lists")
    if not inputs:
        return [], 1, False
    if all(batched):
        n = len(inputs[0])
        if n == 0 or any(len(x) != n for x in inputs):
            raise ValueError(f"{op}: input lists must be non-empty and of equal length")
        objs = [t for x in inputs for t in x]
        _wait_for_torch(objs)
        return [_eager_input(t) for t in objs], n, True
    _wait_for_torch(inputs)
    return [_eager_input(x) for x in inputs], 1, False


def _wait_for_torch(objs):
    """torch CUDA inputs are read by pointer, without DLPack's stream handshake: this
    thread's eager stream waits for the work torch has queued on its current stream, which
    may still be writing them."""
    devices = {o.device.index or 0 for o in objs
               if type(o).__name__ == "Tensor" and type(o).__module__ == "torch" and o.is_cuda}
    if devices:
        import torch
        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # an int, no Stream object
        for d in devices:
            _C.eager_wait(d, raw(d) if raw else torch.cuda.current_stream(d).cuda_stream)


def _eager_input(obj) -> Tensor:
    # an eager call only reads its inputs, so a Tensor goes as it is: the
    # second handle _as_tensor makes (for metadata of its own) cost ~10 us
    return obj if isinstance(obj, Tensor) else _as_tensor(obj)


# Operators with a variant that takes one more input, given as a keyword:
# fn.normalize(x, mask=m) is fn.normalize_masked(x, m).
_INPUT_VARIANTS = {("normalize", "mask"): "normalize_masked"}


def _make(name: str):
    desc = _describe(name)
    nout = len(desc.get("outputs", [])) or 1
    variants = {kw: v for (n, kw), v in _INPUT_VARIANTS.items() if n == name}

    def op(*inputs, device: Optional[str] = None, seed: int = 0, batch_size: Optional[int] = None,
           **kwargs):
        for kw, other in variants.items():
            if kwargs.get(kw) is not None:
                extra = kwargs.pop(kw)
                return getattr(sys.modules[__name__], other)(*inputs, extra, device=device,
                                                             seed=seed, batch_size=batch_size,
                                                             **kwargs)
            kwargs.pop(kw, None)
        pipe = Pipeline.current()
        if pipe is not None and (not inputs or any(isinstance(x, DataNode) for x in inputs)):
            outs = pipe._add_node(name, nout, inputs, device or "cpu", kwargs)
            return outs[0] if nout == 1 else outs
        tensors, batch, batched = _flatten_inputs(name, inputs)
        if not inputs and batch_size:
            batch, batched = int(batch_size), True
        if device not in (None, "cpu", "gpu") and not str(device).startswith("gpu:"):
            raise ValueError(f"{name}: device {device!r} is not 'cpu' or 'gpu'")
        if device and tensors:
            want_gpu = device.startswith("gpu")
            tensors = [t if t.device.startswith("gpu") == want_gpu else t.to(device)
                       for t in tensors]
        hs = [t._h for t in tensors]
        try:  # plain values travel as numbers, not JSON text (fast for per-sample lists)
            handles = _C.ops_call(name, hs, batch, kwargs or None, int(seed), nout)
        except _C.NeedsJson:
            handles = _C.ops_call(name, hs, batch, _args_json(name, kwargs, None), int(seed), nout)
        outs = [Tensor(h) for h in handles]
        if batched:
            groups = [outs[k * batch:(k + 1) * batch] for k in range(nout)]
            return groups[0] if nout == 1 else tuple(groups)
        return outs[0] if nout == 1 else tuple(outs)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = _docstring(desc)
    return op


def _env_int(*names, default):
    for n in names:
        v = os.environ.get(n)
        if v not in (None, ""):
            return int(v)
    return default


def _dataset(dataset_json=None, *, root=None, image_glob=None, label_glob=None, file_list=None,
             split=None, labels: bool = True, shuffle: bool = False, seed: Optional[int] = None,
             shard_id: Optional[int] = None, num_shards: Optional[int] = None,
             stick_to_shard: bool = False, pad_last_batch: bool = False, roi=None,
             oob: str = "error", fill: float = 0.0, random_crop=None, cache_bytes: int = 0,
             cache_device: str = "cpu"):
    """The dataset reader: cases from an MSD/nnU-Net dataset.json, a folder and
    glob(s) (';'-separated image globs are modalities stacked as channels), or a
    file list. Outputs image [C, D, H, W] and, when labels, label [D, H, W].

    shuffle: a new permutation every epoch (from seed, default the pipeline's).
    shard_id/num_shards (DALI semantics; default: RANK and WORLD_SIZE of
    torchrun, else 0 and 1), stick_to_shard, pad_last_batch (all shards give
    the same number of batches). roi: (start, shape) of the spatial axes read
    from every case (only those bytes from uncompressed files); oob: error,
    pad (with fill) or trim.

    random_crop: (D, H, W) of a window read at a random position per sample
    (uniform where it fits; padded with 0 when the case is smaller), the same
    for image and label: only the window's bytes are read, which is what makes
    large cases cheap. Give roi or random_crop, not both.

    cache_bytes: keep decoded cases up to this budget (LRU), so later epochs
    skip reading; ``pipe.cache_stats()`` reports its use. cache_device="gpu"
    keeps them in GPU memory: the outputs are then GPU tensors for "gpu" nodes
    (crop with a gpu slice node, rel_anchor from a uniform node, instead of
    random_crop).
    """
    pipe = Pipeline.current()
    if pipe is None:
        raise RuntimeError("readers are pipeline nodes: call them inside 'with pipe:'")
    if oob not in _OOB:
        raise ValueError(f"readers.dataset: oob {oob!r} is not one of {sorted(_OOB)}")
    if shard_id is None:
        shard_id = _env_int("RANK", default=0)
    if num_shards is None:
        num_shards = _env_int("WORLD_SIZE", default=1)
    src = {
        "dataset_json": None if dataset_json is None else os.fspath(dataset_json),
        "root": None if root is None else os.fspath(root),
        "image_glob": image_glob, "label_glob": label_glob,
        "file_list": None if file_list is None else os.fspath(file_list),
        "split": split, "shuffle": int(bool(shuffle)),
        "seed": pipe.seed if seed is None else int(seed),
        "shard_id": int(shard_id), "num_shards": int(num_shards),
        "stick_to_shard": int(bool(stick_to_shard)), "pad_last_batch": int(bool(pad_last_batch)),
        "batch_size": pipe.batch_size,
    }
    r = None
    if roi is not None and random_crop is not None:
        raise ValueError("readers.dataset: give roi or random_crop, not both")
    if roi is not None:
        start, shape = roi
        r = (list(start), list(shape), _OOB[oob], float(fill))
    outs = pipe._add_reader(src, r, labels, random_crop, cache_bytes, cache_device)
    return outs if labels else outs[0]


readers = types.SimpleNamespace(dataset=_dataset, nifti=_dataset, numpy=_dataset)


class _FnModule(types.ModuleType):
    """Resolves voxpipe.fn.<op> from the registry on first use."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in _C.ops_list():
            raise AttributeError(f"voxpipe.fn has no operator {name!r}; "
                                 f"operators: {', '.join(_C.ops_list())}")
        f = _make(name)
        setattr(self, name, f)
        return f

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(_C.ops_list()))


sys.modules[__name__].__class__ = _FnModule


def chain(inputs, ops, seed: int = 0, device: Optional[str] = None):
    """Runs operators one after the other, eagerly, consecutive pointwise ones as ONE
    pass over the voxels (no intermediate tensors): ``ops`` is a list of (name, kwargs),
    e.g. ``[("gaussian_noise", {"stddev": 0.1, "p": 0.15}), ("gaussian_blur", {"sigma":
    [1.0], "p": 0.15}), ("brightness", {"factor": 1.2}), ("cast", {"dtype": "float16"})]``.
    An operator that is not pointwise (blur, resize...) runs between the fused passes;
    when p leaves it out for every sample of the batch it is skipped and the passes
    around it fuse. The result has the bytes of the same calls made one by one with seeds
    seed, seed + 1, ... Inputs: one tensor or a list (a batch); per-sample arguments as
    in the operators ({"per_sample": [...]})."""
    if not ops:
        raise ValueError("chain: give at least one operator")
    tensors, batch, batched = _flatten_inputs("chain", [inputs])
    if device and tensors:
        want_gpu = device.startswith("gpu")
        tensors = [t if t.device.startswith("gpu") == want_gpu else t.to(device)
                   for t in tensors]
    names = [name for name, _ in ops]
    hs = [t._h for t in tensors]
    try:
        handles = _C.ops_call_chain(names, [kw or None for _, kw in ops], hs, batch, int(seed))
    except _C.NeedsJson:
        jsons = [_args_json(name, dict(kw or {}), None) for name, kw in ops]
        handles = _C.ops_call_chain(names, jsons, hs, batch, int(seed))
    outs = [Tensor(h) for h in handles]
    return outs if batched else outs[0]

"""voxpipe.torch: PyTorch iteration over a voxpipe pipeline, without copies.

    loader = voxpipe.torch.Loader(pipe, output_map=["image", "label"])
    for epoch in range(epochs):
        for batch in loader:            # len(loader) batches per epoch
            x, y = batch["image"], batch["label"]   # torch tensors on the pipeline's GPU

Each output becomes one [N, ...] torch tensor through DLPack: no copy when the
batch's samples share a shape and lie back to back (they do for patches whose
byte size is a multiple of 256, e.g. 128^3 of any dtype); otherwise the
samples are stacked (one device copy) or, with ``stack=False``, handed over as
a list of tensors. The tensors keep voxpipe's buffers alive; the buffers go
back to voxpipe's pools when torch frees them.

Under torchrun/DDP, build the reader inside the process (it takes shard_id and
num_shards from RANK and WORLD_SIZE by default): each rank reads its own shard,
and with pad_last_batch=True every rank runs the same number of batches.
"""

from __future__ import annotations

import math
from typing import Dict, Iterator, Sequence

import torch as _torch

from .pipeline import Pipeline


class Loader:
    """An iterator of dicts of torch tensors, one epoch per ``iter()``.

    output_map: a name for each pipeline output. auto_reset: start the next
    epoch on the next ``iter()`` (always true: voxpipe's reader rolls over by
    itself). stack: make each output one [N, ...] tensor (else a list).
    """

    def __init__(self, pipe: Pipeline, output_map: Sequence[str], stack: bool = True):
        pipe.build()
        if len(output_map) != pipe.num_outputs:
            raise ValueError(f"output_map has {len(output_map)} names for "
                             f"{pipe.num_outputs} pipeline outputs")
        self.pipe = pipe
        self.output_map = list(output_map)
        self.stack = stack
        self._warned = False

    def __len__(self) -> int:
        return math.ceil(self.pipe.epoch_size / self.pipe.batch_size)

    def _convert(self, samples) -> object:
        if not self.stack:
            return [_torch.from_dlpack(t) for t in samples]
        try:
            return _torch.from_dlpack(samples.as_tensor())
        except ValueError:
            return _torch.stack([_torch.from_dlpack(t) for t in samples])

    def __iter__(self) -> Iterator[Dict[str, object]]:
        while True:
            outs, end = self.pipe._run()
            yield {name: self._convert(o) for name, o in zip(self.output_map, outs)}
            if end:
                return

    def reset(self) -> None:
        """Nothing to do: the next iter() continues with the next epoch."""

    def state_dict(self) -> Dict[str, int]:
        return self.pipe.state_dict()

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.pipe.load_state_dict(state)


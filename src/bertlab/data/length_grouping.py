"""Length-grouped training batches (`data.group_by_length=true`) and padding efficiency.

Dynamic padding (always on) pads each batch to its longest example; with random batches one long
example still pads the other 15. Grouping examples of similar length into a batch removes most of
what is left. It changes which examples share a batch (so it is off by default and documented as
changing batch composition), never what an example's output is.

The grouping itself is transformers' `LengthGroupedSampler` (what `Trainer(group_by_length=True)`
uses): shuffle, cut into mega-batches of 50 batches, sort each by length. Used as is, it hands the
batches of a mega-batch over longest first, which would make every epoch a long-to-short curriculum;
`length_grouped_order` therefore also shuffles the order of the full batches (small, home-made,
because transformers has no batch-level shuffle). The order is a function of (seed, epoch), like
the plain shuffle of resumable_loader.py, so a killed run resumes on the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler

from bertlab.data.resumable_loader import EpochShuffle, epoch_generator


def length_grouped_order(lengths: list[int], batch_size: int, generator: torch.Generator) -> list[int]:
    """A sample order whose consecutive `batch_size` chunks are length-grouped batches, in random
    batch order; the one partial batch (if any) stays last so chunks stay aligned."""
    order = list(LengthGroupedSampler(batch_size, lengths=list(lengths), generator=generator))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    partial = batches.pop() if batches and len(batches[-1]) < batch_size else []
    shuffled = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return [i for batch in shuffled for i in batch] + partial


class LengthGroupedShuffle(EpochShuffle):
    """EpochShuffle's protocol (set_epoch, mid-epoch `start`), with length-grouped batches."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        super().__init__(len(lengths), seed)
        self.lengths = list(lengths)
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[int]:
        order = length_grouped_order(self.lengths, self.batch_size, epoch_generator(self.seed, self.epoch))
        start, self.start = self.start, 0
        yield from order[start:]


def padding_efficiency(lengths: list[int], batches: list[list[int]], pad_to: int | None = None) -> float:
    """Real tokens / processed tokens over `batches` (lists of indices into `lengths`): each batch is
    padded to its longest example, or to `pad_to` when given (padding to max_length)."""
    real = processed = 0
    for batch in batches:
        sizes = [lengths[i] for i in batch]
        real += sum(sizes)
        processed += len(sizes) * (pad_to if pad_to is not None else max(sizes))
    return real / processed if processed else 1.0


def epoch_batches(
    lengths: list[int], batch_size: int, group_by_length: bool, seed: int, epoch: int = 0
) -> list[list[int]]:
    """One epoch of training batches exactly as the datamodule forms them (random or length-grouped)."""
    sampler = LengthGroupedShuffle(lengths, batch_size, seed) if group_by_length else EpochShuffle(len(lengths), seed)
    sampler.set_epoch(epoch)
    order = list(sampler)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

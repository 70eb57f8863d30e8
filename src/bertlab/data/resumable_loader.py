"""A training DataLoader whose batch order is a function of (seed, epoch) and that can start mid-epoch.

Why not `DataLoader(shuffle=True)`: its order is drawn from the global torch RNG when each epoch
starts, and every new iterator draws a worker base seed from it too. A run resumed from a
checkpoint would then see a different order (and different dropout masks) than the run it
continues. Here every draw comes from generators seeded by the training seed, and the loader
implements Lightning's `state_dict` / `load_state_dict` protocol: Lightning stores how many
batches of the current epoch were consumed in the checkpoint and the resumed run skips them,
so a killed and resumed run trains on exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # SeedSequence mixes (seed, epoch) into a well-spread 63-bit seed: (0, 1) and (1, 0) differ.
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


class EpochShuffle(Sampler[int]):
    """A permutation of range(n) that depends on (seed, epoch) only; Lightning calls `set_epoch`
    at the start of every epoch (the DistributedSampler convention)."""

    def __init__(self, n: int, seed: int):
        self.n = n
        self.seed = seed
        self.epoch = 0
        self.start = 0  # samples of this epoch to skip (set when resuming mid-epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.n, generator=epoch_generator(self.seed, self.epoch)).tolist()
        start, self.start = self.start, 0
        yield from order[start:]


class ResumableDataLoader(DataLoader):
    """Shuffled batches in a seeded order; resumable mid-epoch through Lightning's loader state.

    `len()` stays the full epoch: on a restart Lightning counts the batches already done and
    expects the loader to yield only the rest, which is what `load_state_dict` arranges.
    """

    def __init__(self, dataset, batch_size: int, seed: int, sampler: EpochShuffle | None = None, **kwargs):
        # sampler: another (seed, epoch) order with the same protocol, e.g. length_grouping.py's
        self.shuffle_sampler = sampler if sampler is not None else EpochShuffle(len(dataset), seed)
        # generator: the worker base seed comes from it, not from the global RNG (see module doc)
        super().__init__(
            dataset,
            batch_size=batch_size,
            sampler=self.shuffle_sampler,
            generator=torch.Generator().manual_seed(seed),
            **kwargs,
        )
        self.batches_done = 0
        self._resume: tuple[int, int] | None = None  # (epoch, batches done) from a checkpoint

    def __iter__(self):
        return self._counted()

    def _counted(self):
        # A generator: its body runs at the first next(), after Lightning has called set_epoch.
        sampler = self.shuffle_sampler
        skip = 0
        if self._resume is not None and self._resume[0] == sampler.epoch:
            skip = self._resume[1]
        self._resume = None
        sampler.start = skip * self.batch_size
        self.batches_done = skip
        for batch in super().__iter__():
            self.batches_done += 1
            yield batch

    def state_dict(self) -> dict:
        return {"epoch": self.shuffle_sampler.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict) -> None:
        self._resume = (int(state["epoch"]), int(state["batches_done"]))

"""PET's auxiliary masked-LM loss on the unlabeled pool (`approach.aux_mlm_weight`).

PET (timoschick/pet pet/wrapper.py, `mlm_train_step` with `lm_training`) draws a batch of
unlabeled examples beside each labelled batch, encodes them through the same pattern, masks them
and mixes the two losses: `alpha * task + (1 - alpha) * lm`, alpha = 0.9999 in its runs; here
w = approach.aux_mlm_weight = 1 - alpha (PET's 1e-4), so loss = (1 - w) * task + w * mlm.

The masking is the further pre-training stage's (pretrain/masking.py: 15% of the tokens, 80%
[MASK] / 10% random / 10% kept, a block's mask a function of (seed, pass, index) alone), applied
to the rendered input; the template's mask slot and the special tokens are never masked.

The pool: the task's training pool less the examples drawn for validation and test (their texts
stay unseen), at most `approach.aux_pool_size` of them, drawn by task.data_seed. Each step takes
the next data.batch_size of them in an order shuffled per pass, a function of the global step:
a resumed run continues with the batch an uninterrupted one would have used.
"""

from __future__ import annotations

import random

import torch

from bertlab.pretrain.masking import Masker, MaskingSettings


def unlabeled_pool(pools: dict, splits: dict, limit: int, data_seed: int) -> list:
    held_out = {(e.text_a, e.text_b) for name in ("val", "test") for e in splits.get(name, [])}
    pool = [e for e in pools["train"] if (e.text_a, e.text_b) not in held_out]
    if len(pool) > limit:
        pool = random.Random(data_seed).sample(pool, limit)
    return pool


class AuxiliaryMLM:
    """(model, task loss, step) -> the mixed loss; the masked-LM part is computed on `batch_size`
    pool examples per step."""

    def __init__(self, weight: float, pool: list, prompt, tokenizer, batch_size: int, seed: int):
        self.weight, self.pool, self.prompt, self.batch_size, self.seed = weight, pool, prompt, batch_size, seed
        self.masker = Masker(tokenizer, MaskingSettings(), seed)
        self._blocks: dict[int, dict] = {}  # rendered on first use: the pool may be large, a run short
        self._orders: dict[int, list[int]] = {}  # the pool's order in each pass
        self.last_mlm_loss: float | None = None

    def block(self, index: int) -> dict:
        if index not in self._blocks:
            rendered = self.prompt.render(self.pool[index])
            self._blocks[index] = {
                "index": index,
                "input_ids": rendered.input_ids,
                "special_tokens_mask": rendered.special,
                "offset_mapping": [(0, 0)] * len(rendered.input_ids),
            }
        return self._blocks[index]

    def batch_indices(self, step: int) -> tuple[list[int], int]:
        """The pool indices of step `step`'s batch, and the pass over the pool it belongs to."""
        n = len(self.pool)
        starts = step * self.batch_size
        indices, passes = [], set()
        for k in range(starts, starts + min(self.batch_size, n)):
            pass_, at = divmod(k, n)
            if pass_ not in self._orders:
                self._orders[pass_] = random.Random(f"{self.seed}/{pass_}").sample(range(n), n)
            indices.append(self._orders[pass_][at])
            passes.add(pass_)
        return indices, min(passes)

    def __call__(self, model, task_loss: torch.Tensor, step: int) -> torch.Tensor:
        if self.weight == 0 or not self.pool:
            return task_loss
        indices, pass_ = self.batch_indices(step)
        batch = self.masker.collate([self.block(i) for i in indices], epoch=pass_)
        if not bool((batch["labels"] != -100).any()):
            return task_loss  # nothing masked in this batch (short inputs): no masked-LM term this step
        device = task_loss.device
        mlm = model.mlm_loss(
            batch["input_ids"].to(device), batch["attention_mask"].to(device), batch["labels"].to(device)
        )
        self.last_mlm_loss = float(mlm.detach())
        return (1 - self.weight) * task_loss + self.weight * mlm

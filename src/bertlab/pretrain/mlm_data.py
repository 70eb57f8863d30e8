"""The stage's batches: training blocks (masked afresh per epoch, or from K static copies) and the
held-out blocks that give the MLM validation loss.

The held-out slice is a seeded sample of whole documents, blocked separately, so no document
(and no block) is in both. Its masks are fixed (masking.py's held-out stream): the loss before the
stage, at every validation and after it is measured on the very same masked tokens.

Training batches reuse resumable_loader.py: the block order is a function of (seed, epoch) and a
killed run resumes mid-epoch on the same batches. The sampler hands (epoch, block) pairs to the
dataset, so the collate function knows the epoch (masks depend on it) in worker processes too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from bertlab.core.errors import ConfigError
from bertlab.core.values import check_number
from bertlab.data.resumable_loader import EpochShuffle, ResumableDataLoader
from bertlab.pretrain.masking import HELD_OUT_STREAM, MaskingSettings, build_masker, make_blocks
from bertlab.pretrain.nsp_data import check_sentences, nsp_blocks


class EpochTaggedShuffle(EpochShuffle):
    """EpochShuffle's seeded order and protocol, each index paired with the epoch."""

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        for index in super().__iter__():
            yield epoch, index


class TaggedBlocks(Dataset):
    def __init__(self, blocks: list[dict]):
        self.blocks = blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        return {**self.blocks[index], "epoch": epoch}


class MlmData(L.LightningDataModule):
    """Blocks tokenised once, at construction (build_mlm_data). Counts: n_documents (training +
    held-out), n_held_out_documents, n_tokens (text tokens in all blocks, special tokens not
    counted), n_train_blocks, n_held_out_blocks."""

    def __init__(
        self,
        train_blocks: list[dict],
        held_out_blocks: list[dict],
        masker,
        *,
        batch_size: int,
        eval_batch_size: int,
        seed: int,
        n_documents: int,
        n_held_out_documents: int,
        num_workers: int = 0,
    ):
        super().__init__()
        self.train_blocks, self.held_out_blocks, self.masker = train_blocks, held_out_blocks, masker
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.num_workers = num_workers
        self.n_documents, self.n_held_out_documents = n_documents, n_held_out_documents
        self.n_train_blocks, self.n_held_out_blocks = len(train_blocks), len(held_out_blocks)
        self.n_tokens = sum(
            len(b["special_tokens_mask"]) - sum(b["special_tokens_mask"]) for b in train_blocks + held_out_blocks
        )

    def _collate_train(self, items: list[dict]) -> dict:
        return self.masker.collate(items, items[0]["epoch"])

    def _collate_held_out(self, blocks: list[dict]) -> dict:
        return self.masker.collate(blocks, 0, stream=HELD_OUT_STREAM)

    def train_dataloader(self) -> DataLoader:
        sampler = EpochTaggedShuffle(self.n_train_blocks, self.seed)
        return ResumableDataLoader(
            TaggedBlocks(self.train_blocks),
            self.batch_size,
            self.seed,
            sampler=sampler,
            collate_fn=self._collate_train,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        # In order, fixed masks: the held-out loss is comparable from one evaluation to the next.
        # Own generator: creating an iterator must not consume the global RNG (as in datamodule.py).
        return DataLoader(
            self.held_out_blocks,
            batch_size=self.eval_batch_size,
            shuffle=False,
            generator=torch.Generator().manual_seed(self.seed),
            collate_fn=self._collate_held_out,
            num_workers=self.num_workers,
        )


def split_documents(texts: list[str], held_out: float, seed: int) -> tuple[list[str], list[str]]:
    """(training, held-out) documents: round(held_out * n) of them, at least one, drawn with
    random.Random(seed), each part in corpus order."""
    check_number(
        held_out,
        "pretrain.held_out",
        "the share of documents held out for the MLM validation loss, a number above 0 and below 1 (e.g. 0.1)",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
    )
    n = len(texts)
    if n < 2:
        raise ConfigError(
            f"the pretraining corpus has {n} document(s); it needs at least 2 (one to train on, one held out for "
            "the MLM validation loss): give a larger corpus (pretrain.corpus, task.n_train or pretrain.domain_corpus)."
        )
    k = min(n - 1, max(1, round(held_out * n)))
    chosen = set(random.Random(seed).sample(range(n), k))
    return [t for i, t in enumerate(texts) if i not in chosen], [t for i, t in enumerate(texts) if i in chosen]


def build_mlm_data(
    texts: list[str],
    tokenizer,
    *,
    max_length: int,
    long_documents: str,
    masking: MaskingSettings,
    held_out: float,
    batch_size: int,
    eval_batch_size: int,
    seed: int,
    num_workers: int = 0,
    objective: str = "mlm",
) -> MlmData:
    """objective mlm: blocks of running text (masking.py make_blocks); mlm_nsp: sentence pairs
    (nsp_data.py), built within the training and within the held-out documents, never across."""
    if objective == "mlm_nsp":
        check_sentences(texts, "the pre-training corpus")
    train_texts, held_texts = split_documents(texts, held_out, seed)
    if objective == "mlm_nsp":
        train_blocks = nsp_blocks(train_texts, tokenizer, max_length, seed)
        held_out_blocks = nsp_blocks(held_texts, tokenizer, max_length, seed + 1)
    else:
        train_blocks = make_blocks(train_texts, tokenizer, max_length, long_documents)
        held_out_blocks = make_blocks(held_texts, tokenizer, max_length, long_documents)
    if not train_blocks or not held_out_blocks:
        raise ConfigError("the pretraining corpus has no tokens (every document is empty once tokenised).")
    return MlmData(
        train_blocks,
        held_out_blocks,
        build_masker(tokenizer, masking, seed),
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        seed=seed,
        n_documents=len(texts),
        n_held_out_documents=len(held_texts),
        num_workers=num_workers,
    )

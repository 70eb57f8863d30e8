"""Tokenised train/val/test splits and their dataloaders.

Batches are padded dynamically (to the longest example of the batch, by transformers'
DataCollatorWithPadding): it changes nothing that is learned, and most GLUE examples are far
shorter than max_length, so padding every batch to 128 would waste most of the compute.
"""

import lightning as L
import torch
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding

from bertlab.data import token_cache
from bertlab.data.encoder import Encoder
from bertlab.data.length_grouping import LengthGroupedShuffle
from bertlab.data.readers import Example
from bertlab.data.resumable_loader import ResumableDataLoader


def tokenize(examples: list[Example], tokenizer, max_length: int, regression: bool) -> list[dict]:
    texts_a = [e.text_a for e in examples]
    texts_b = [e.text_b for e in examples] if examples and examples[0].text_b is not None else None
    encoded = tokenizer(texts_a, texts_b, truncation=True, max_length=max_length)
    label_type = float if regression else int
    return [
        {**{key: values[i] for key, values in encoded.items()}, "labels": label_type(examples[i].label)}
        for i in range(len(examples))
    ]


class SequenceEncoder(Encoder):
    """Sequence classification and regression: one label per example (`tokenize`)."""

    def __init__(self, tokenizer, max_length: int, regression: bool):
        self.tokenizer, self.max_length, self.regression = tokenizer, max_length, regression
        self.collate = DataCollatorWithPadding(tokenizer)

    def encode(self, examples: list[Example], split: str) -> list[dict]:
        return tokenize(examples, self.tokenizer, self.max_length, self.regression)


class FewSampleDataModule(L.LightningDataModule):
    def __init__(
        self,
        splits: dict[str, list[Example]],
        tokenizer,
        max_length: int,
        regression: bool,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int = 0,
        seed: int = 0,
        group_by_length: bool = False,
        token_cache_dir: str | None = None,
        soft_labels: torch.Tensor | None = None,
        encoder=None,
        scaler=None,
        example_index: str | None = None,
    ):
        super().__init__()
        self.group_by_length = group_by_length  # length-grouped training batches (length_grouping.py)
        self.token_cache_dir = token_cache_dir  # tokenised splits shared by a sweep's jobs; None = off
        self.cache_hits: dict[str, bool] = {}
        self.seed = seed  # the training seed: batch order (resumable_loader.py)
        self.splits = splits
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.regression = regression
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        # tokenisation, labels and batches of the task's problem (problems/<kind>/encoder.py: an
        # Encoder); None, for those building a datamodule by hand: one label per sequence
        self.encoder = encoder or SequenceEncoder(tokenizer, max_length, regression)
        self.collate = self.encoder.collate
        self.length = self.encoder.length  # an item's padded length (multiple choice: its longest choice)
        self.encoded: dict[str, list[dict]] = {}
        # distillation (run/distill.py): the teacher's logits, one row per training example in
        # split order; each row goes into its example's item, so it follows it through any shuffle
        self.soft_labels = soft_labels
        # side features (data/features.py): each example's scaled features go into its item (any split)
        self.scaler = scaler
        # aux=mlm: each training item carries its position in the split under this key (its masks' key)
        self.example_index = example_index

    def setup(self, stage: str | None = None) -> None:
        if not self.encoded:
            fingerprint = token_cache.tokenizer_fingerprint(self.tokenizer) if self.token_cache_dir else ""
            for name, examples in self.splits.items():
                extra = self.encoder.cache_tag(name)  # what else changes the labels (tag alignment)
                key = token_cache.cache_key(fingerprint, examples, self.max_length, self.regression, extra)
                self.encoded[name], self.cache_hits[name] = token_cache.cached(
                    self.token_cache_dir,
                    key,
                    lambda examples=examples, name=name: self.encoder.encode(examples, name),
                )
                # state kept beside the items (question answering's windows)
                self.encoded[name] = self.encoder.remember(name, examples, self.encoded[name])
            # below, new dicts: the token cache's entries (text only) stay as they are
            if self.soft_labels is not None:
                rows = self.soft_labels.tolist()
                self.encoded["train"] = [
                    {**item, "teacher_logits": row} for item, row in zip(self.encoded["train"], rows)
                ]
            if self.scaler is not None:
                for name, examples in self.splits.items():
                    self.encoded[name] = [
                        {**item, **self.scaler.transform(example.features)}
                        for item, example in zip(self.encoded[name], examples, strict=True)
                    ]
            if self.example_index and "train" in self.encoded:
                key = self.example_index
                self.encoded["train"] = [{**item, key: i} for i, item in enumerate(self.encoded["train"])]

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        kwargs = dict(collate_fn=self.collate, num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
        if shuffle:  # seeded order, resumable mid-epoch (kill and resume)
            sampler = None
            if self.group_by_length:
                lengths = [self.length(e) for e in self.encoded[split]]
                sampler = LengthGroupedShuffle(lengths, batch_size, self.seed)
            return ResumableDataLoader(self.encoded[split], batch_size, self.seed, sampler=sampler, **kwargs)
        # Evaluation in order of length, longest first: batches of similar lengths carry little
        # padding, and the metrics are sums over examples, so the order changes none of them
        # (an out-of-memory shows on the first batch). Own generator: creating an iterator must
        # not consume the global RNG (resume.py).
        encoded = self.encoded[split]
        by_length = sorted(range(len(encoded)), key=lambda i: -self.length(encoded[i]))
        return DataLoader(
            encoded,
            batch_size=batch_size,
            sampler=by_length,
            generator=torch.Generator().manual_seed(self.seed),
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

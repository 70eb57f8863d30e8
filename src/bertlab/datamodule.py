"""Tokenised train/val/test splits and their dataloaders.

Batches are padded dynamically (to the longest example of the batch, by transformers'
DataCollatorWithPadding): it changes nothing that is learned, and most GLUE examples are far
shorter than max_length, so padding every batch to 128 would waste most of the compute.
"""

import lightning as L
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding

from bertlab.readers import Example


def tokenize(examples: list[Example], tokenizer, max_length: int, regression: bool) -> list[dict]:
    texts_a = [e.text_a for e in examples]
    texts_b = [e.text_b for e in examples] if examples and examples[0].text_b is not None else None
    encoded = tokenizer(texts_a, texts_b, truncation=True, max_length=max_length)
    label_type = float if regression else int
    return [
        {**{key: values[i] for key, values in encoded.items()}, "labels": label_type(examples[i].label)}
        for i in range(len(examples))
    ]


class FewSampleDataModule(L.LightningDataModule):
    def __init__(self, splits: dict[str, list[Example]], tokenizer, max_length: int, regression: bool,
                 batch_size: int, eval_batch_size: int, num_workers: int = 0):
        super().__init__()
        self.splits = splits
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.regression = regression
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.collate = DataCollatorWithPadding(tokenizer)
        self.encoded: dict[str, list[dict]] = {}

    def setup(self, stage: str | None = None) -> None:
        if not self.encoded:
            self.encoded = {
                name: tokenize(examples, self.tokenizer, self.max_length, self.regression)
                for name, examples in self.splits.items()
            }

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.encoded[split], batch_size=batch_size, shuffle=shuffle, collate_fn=self.collate,
            num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

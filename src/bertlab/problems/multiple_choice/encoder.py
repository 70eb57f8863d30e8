"""Multiple-choice examples -> token ids, and their batches (batch x choices x length).

As transformers' run_swag.py: each example becomes N pairs (context, second text + " " + ending),
tokenised as pairs with `truncation=True` (longest first) to task.max_length; an item keeps the N
encodings as lists and the answer's index as `labels`. transformers' DataCollatorForMultipleChoice
(in the installed transformers) flattens a batch to B*N sequences, pads them to the longest of the
batch and views them back as (B, N, L), which is the input AutoModelForMultipleChoice takes.
"""

from __future__ import annotations

from transformers import DataCollatorForMultipleChoice

from bertlab.data.encoder import Encoder
from bertlab.problems.multiple_choice.reader import ChoiceExample


class ChoiceEncoder(Encoder):
    """Tokenises multiple-choice examples for FewSampleDataModule: `encode(examples, split)`,
    `cache_tag(split)`, the batch `collate` and an item's `length` (its longest choice)."""

    def __init__(self, tokenizer, max_length: int, num_choices: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.num_choices = num_choices
        self.collate = DataCollatorForMultipleChoice(tokenizer)

    def cache_tag(self, split: str) -> str:
        return f"choices={self.num_choices}"  # an item holds N encodings, not one

    @staticmethod
    def length(item: dict) -> int:
        """Tokens of the longest choice: what the batch is padded to (length grouping, eval order)."""
        return max(len(ids) for ids in item["input_ids"])

    def encode(self, examples: list[ChoiceExample], split: str) -> list[dict]:
        if not examples:
            return []
        n = self.num_choices
        first = [e.context for e in examples for _ in range(n)]
        second = [text for e in examples for text in e.text_b]
        encoded = self.tokenizer(first, second, truncation=True, max_length=self.max_length)
        return [
            {**{key: values[i * n : (i + 1) * n] for key, values in encoded.items()}, "labels": example.answer}
            for i, example in enumerate(examples)
        ]

"""What a task problem's encoder is: the tokenisation, labels and batches FewSampleDataModule asks for.

No imports: a problem's encoder module subclasses it without bringing Lightning or torch.
"""


class Encoder:
    """The interface FewSampleDataModule asks of a task problem's encoder (problems/<kind>/encoder.py,
    made by its Problem's `encoder`): `collate`, the batch function (set by __init__); `encode`, a
    split's examples -> items; the rest have defaults a problem overrides where it differs."""

    collate = None  # items -> a batch (a transformers data collator)

    def encode(self, examples: list, split: str) -> list[dict]:
        raise NotImplementedError

    def cache_tag(self, split: str) -> str:
        """What else than the texts, max_length and label type changes a split's items (the token cache's key)."""
        return ""

    @staticmethod
    def length(item: dict) -> int:
        """An item's padded length (length-grouped batches, evaluation order): its one sequence."""
        return len(item["input_ids"])

    def remember(self, split: str, examples: list, items: list[dict]) -> list[dict]:
        """State kept beside a split's items once encoded or read from the cache (question
        answering's windows); returns the items to use."""
        return items

"""Word tags -> sub-word labels, and their batches (token classification).

A word the tokenizer cuts into pieces has one tag; the model predicts one per piece. As in
transformers' run_ner.py, the tokenizer's `word_ids` say which word each piece comes from: the
first piece of a word carries its tag, the others -100 (ignored by the loss and by the metrics).
With `task.label_all_pieces` every piece of a training sentence is labelled, a continuation piece
of a `B-X` word with `I-X`. Validation and test sentences are always labelled on first pieces
only, so that they are scored once per word (metrics.py maps those positions back to
the words). Words cut off by task.max_length are not scored (as in run_ner.py).
"""

from __future__ import annotations

from transformers import DataCollatorForTokenClassification

from bertlab.core.errors import ConfigError, ModelError
from bertlab.data.encoder import Encoder
from bertlab.problems.token_classification.reader import TaggedSentence

IGNORE = -100  # torch's CrossEntropyLoss ignore_index, and the collator's label padding


def continuation_tags(labels: list[str]) -> dict[int, int]:
    """Tag index -> the index a continuation piece gets: I-X for B-X, itself for every other tag."""
    index = {str(label): i for i, label in enumerate(labels)}
    mapping = {}
    for i, label in enumerate(map(str, labels)):
        if label.startswith("B-"):
            inside = "I-" + label[2:]
            if inside not in index:
                raise ConfigError(
                    f"task.label_all_pieces=true labels the later pieces of a '{label}' word '{inside}', which is "
                    f"not in task.labels={list(map(str, labels))}; add it, or set task.label_all_pieces=false."
                )
            mapping[i] = index[inside]
        else:
            mapping[i] = i
    return mapping


def align_labels(
    word_ids: list[int | None], word_tags: tuple[int, ...], continuation: dict[int, int] | None
) -> list[int]:
    """One label per piece: the word's tag on its first piece; on later pieces -100, or
    `continuation[tag]` when given (label_all_pieces); -100 on special tokens (word id None)."""
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(IGNORE)
        elif word != previous:
            labels.append(word_tags[word])
        else:
            labels.append(IGNORE if continuation is None else continuation[word_tags[word]])
        previous = word
    return labels


class TagEncoder(Encoder):
    """Tokenises tagged sentences for FewSampleDataModule: `encode(examples, split)`, the
    `cache_tag(split)` that keys what changes the labels, and the batch `collate`."""

    def __init__(self, tokenizer, max_length: int, labels: list[str], label_all_pieces: bool):
        if not getattr(tokenizer, "is_fast", False):  # word_ids exist on fast tokenizers only
            raise ModelError(
                f"token classification aligns tags with the tokenizer's word_ids, which only fast tokenizers give; "
                f"{type(tokenizer).__name__} is a slow one: use a model that ships a tokenizer.json."
            )
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.label_all_pieces = label_all_pieces
        self.continuation = continuation_tags(labels) if label_all_pieces else None
        # pads labels with -100 as well as the inputs, to the longest sentence of the batch
        self.collate = DataCollatorForTokenClassification(tokenizer)

    def all_pieces(self, split: str) -> bool:
        return self.label_all_pieces and split == "train"

    def cache_tag(self, split: str) -> str:
        return f"tags:all_pieces={self.all_pieces(split)}"

    def encode(self, examples: list[TaggedSentence], split: str) -> list[dict]:
        if not examples:
            return []
        encoded = self.tokenizer(
            [list(e.tokens) for e in examples], is_split_into_words=True, truncation=True, max_length=self.max_length
        )
        continuation = self.continuation if self.all_pieces(split) else None
        rows = []
        for i, example in enumerate(examples):
            row = {key: values[i] for key, values in encoded.items()}
            row["labels"] = align_labels(encoded.word_ids(i), example.tags, continuation)
            rows.append(row)
        return rows

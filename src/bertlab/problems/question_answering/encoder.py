"""Question + context -> overlapping windows, and their batches (question answering).

As transformers' examples/pytorch/question-answering/run_qa.py (prepare_train_features,
prepare_validation_features): the question and its context are tokenised as a pair, the context
truncated to task.max_length and continued in further windows that overlap by `doc_stride` tokens
(the tokenizer's `return_overflowing_tokens` and `stride`), so no part of a long context is lost.

- Training items: every window, labelled with `start_positions` / `end_positions`, the tokens of
  the first gold answer mapped through the offset mapping; a window that does not hold the whole
  answer is labelled at [CLS] (index 0 of the window), as run_qa.py does.
- Evaluation items: every window, with an integer `feature_index` (its position in the split);
  the window -> example map and the offset mapping of the context tokens stay here, per split
  (`windows[split]`), for the post-processing of metrics.py. They are stored in the
  items too (so a token cache hit has them) and taken out by `remember`, before any batch.

Fast tokenizers only (the offset mapping and sequence_ids exist on those).
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import DataCollatorWithPadding

from bertlab.core.errors import DataError, ModelError
from bertlab.data.encoder import Encoder
from bertlab.problems.question_answering.reader import QAExample

STATE = ("example_index", "offset_mapping")  # per window, kept here rather than in the batches


@dataclass(frozen=True)
class Windows:
    """One evaluation split's windows: for window i, its example and the character span of each of
    its tokens (None outside the context), and the examples themselves."""

    example_index: list[int]
    offset_mapping: list[list[tuple[int, int] | None]]
    examples: list[QAExample]


def doc_stride(max_length: int, stride: int | None) -> int:
    """task.doc_stride; null: a third of max_length (run_qa.py's 128 of 384)."""
    return max_length // 3 if stride is None else stride


class QAEncoder(Encoder):
    """Tokenises questions and contexts into windows for FewSampleDataModule: `encode(examples,
    split)`, `cache_tag(split)`, `remember(split, examples, items)` and the batch `collate`."""

    def __init__(self, tokenizer, max_length: int, stride: int | None):
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError(
                "question answering maps answers to tokens with the tokenizer's offset mapping, which only fast "
                f"tokenizers give; {type(tokenizer).__name__} is a slow one: use a model that ships a tokenizer.json."
            )
        if tokenizer.padding_side != "right":  # the question first, then the context (run_qa.py: pad_on_right)
            raise ModelError(
                f"question answering puts the question before the context; {type(tokenizer).__name__} pads on the "
                f"{tokenizer.padding_side}, which this encoder does not support: use a BERT-style model."
            )
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.stride = doc_stride(max_length, stride)
        self.windows: dict[str, Windows] = {}
        # pads the inputs to the longest window of the batch; the int fields (start_positions,
        # end_positions, feature_index) become tensors of shape (batch,)
        self.collate = DataCollatorWithPadding(tokenizer)

    def cache_tag(self, split: str) -> str:
        return f"qa:{'train' if split == 'train' else 'eval'}:stride={self.stride}"

    def tokenize(self, examples: list[QAExample]):
        questions = [e.question.lstrip() for e in examples]  # run_qa.py: leading spaces waste window room
        try:
            return self.tokenizer(
                questions,
                [e.context for e in examples],
                truncation="only_second",
                max_length=self.max_length,
                stride=self.stride,
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
            )
        except Exception as exc:  # the tokenizers library: the question leaves no room for the context
            raise self._too_long(examples, questions) or exc from None

    def _too_long(self, examples: list[QAExample], questions: list[str]) -> DataError | None:
        special = self.tokenizer.num_special_tokens_to_add(pair=True)
        for example, question in zip(examples, questions):
            room = self.max_length - special - len(self.tokenizer(question, add_special_tokens=False)["input_ids"])
            if room <= self.stride:
                return DataError(
                    f"question id {example.id}: the question leaves {max(room, 0)} tokens of the {self.max_length} "
                    f"(task.max_length) for its context, no more than task.doc_stride={self.stride} that windows "
                    "overlap by; raise task.max_length or lower task.doc_stride."
                )
        return None

    def encode(self, examples: list[QAExample], split: str) -> list[dict]:
        if not examples:
            return []
        encoded = self.tokenize(examples)
        window_example = encoded.pop("overflow_to_sample_mapping")
        offsets = encoded.pop("offset_mapping")
        rows = []
        for i, example_index in enumerate(window_example):
            row = {key: values[i] for key, values in encoded.items()}
            sequence_ids = encoded.sequence_ids(i)
            context_span(sequence_ids, examples[example_index])
            if split == "train":
                start, end = answer_tokens(offsets[i], sequence_ids, examples[example_index])
                row.update(start_positions=start, end_positions=end)
            else:
                row["feature_index"] = len(rows)
                row["example_index"] = example_index
                row["offset_mapping"] = [
                    tuple(span) if sequence_ids[k] == 1 else None for k, span in enumerate(offsets[i])
                ]
            rows.append(row)
        return rows

    def remember(self, split: str, examples: list[QAExample], items: list[dict]) -> list[dict]:
        """Keeps an evaluation split's windows here and returns its items without them (batches carry
        feature_index only). FewSampleDataModule calls it once per split, after the token cache."""
        if split == "train":
            return items
        self.windows[split] = Windows(
            [item["example_index"] for item in items], [item["offset_mapping"] for item in items], list(examples)
        )
        return [{k: v for k, v in item.items() if k not in STATE} for item in items]


def context_span(sequence_ids: list, example: QAExample) -> tuple[int, int]:
    """The context's first and last token of a window; a context the tokenizer keeps no token of
    (only zero-width or control characters) is one message, not run_qa.py's `1 is not in list`."""
    if 1 not in sequence_ids:
        raise DataError(
            f"question id {example.id}: the context {example.context[:60]!r} gives no token (the tokenizer drops "
            "every character of it: zero-width, control or unknown characters); fix or drop the question."
        )
    return sequence_ids.index(1), len(sequence_ids) - 1 - sequence_ids[::-1].index(1)


def answer_tokens(offsets: list, sequence_ids: list, example: QAExample) -> tuple[int, int]:
    """The first gold answer's first and last token in this window, or (0, 0) -- [CLS] -- when the
    window does not hold all of it (run_qa.py's rule)."""
    start_char = example.starts[0]
    end_char = start_char + len(example.answers[0])
    first, last = context_span(sequence_ids, example)
    if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
        return 0, 0
    start = first
    while start <= last and offsets[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:
        end -= 1
    start, end = start - 1, end + 1
    # run_qa.py's loops assume the answer covers a token; one made of characters the tokenizer drops
    # (a zero-width space) would be labelled with the tokens around it, silently
    if start > end or offsets[start][1] <= start_char or offsets[end][0] >= end_char:
        raise DataError(
            f"question id {example.id}: answer {example.answers[0]!r} at answer_start={start_char} covers no token "
            "of the context (the tokenizer drops its characters: zero-width, control or unknown ones); fix the "
            "answer's text and answer_start, or drop the question."
        )
    return start, end

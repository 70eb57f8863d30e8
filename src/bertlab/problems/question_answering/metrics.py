"""Question answering metrics: start/end logits of every window -> one answer text per question ->
exact match and F1 (SQuAD v1.1's official formula); the main metric is F1.

Post-processing follows transformers' examples/pytorch/question-answering/utils_qa.py
(postprocess_qa_predictions, SQuAD v1.1 form): for each question, over all its windows, the
`n_best_size` highest start and end logits are paired; a pair is a candidate when both tokens are
in the context, the end is not before the start and the span is at most `max_answer_length` tokens;
its score is start logit + end logit, and the best candidate's characters of the context (through
the offset mapping) are the answer. An answer that crosses a window boundary is found in the window
that holds all of it (windows overlap by doc_stride). One departure: each window's logits are cut to
its own tokens before ranking, so the padding of a batch never takes a place among the n best
(utils_qa.py ranks the padded positions too, then skips them).

The scores are torchmetrics' SQuAD implementation (torchmetrics.functional.text.squad: the
official evaluate-v1.1.py normalisation and token F1, the max over the gold answers), reported as
fractions (0-1) like every other metric here, not as SQuAD's percentages.
"""

from __future__ import annotations

import statistics

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.functional.text import squad
from torchmetrics.utilities import dim_zero_cat

from bertlab.core.errors import ConfigError
from bertlab.problems.metric_names import QUESTION_ANSWERING_METRICS


def best_answer(windows, start_logits, end_logits, offsets, context: str, n_best: int, max_length: int) -> str:
    """The answer text for one question. windows: its windows' indices; start_logits[w],
    end_logits[w], offsets[w]: window w's logits and offset mapping (None outside the context)."""
    best, best_score = None, None
    for w in windows:
        starts, ends, spans = start_logits[w], end_logits[w], offsets[w]
        top_starts = torch.argsort(starts, descending=True, stable=True)[:n_best].tolist()
        top_ends = torch.argsort(ends, descending=True, stable=True)[:n_best].tolist()
        for s in top_starts:
            for e in top_ends:
                if spans[s] is None or spans[e] is None or e < s or e - s + 1 > max_length:
                    continue
                score = float(starts[s] + ends[e])
                if best_score is None or score > best_score:  # the first of equal scores, as a stable sort's
                    best, best_score = (spans[s][0], spans[e][1]), score
    return "" if best is None else context[best[0] : best[1]]  # utils_qa.py: "empty"; no text matches either


def squad_scores(predictions: list[str], examples: list) -> dict[str, float]:
    """exact_match and answer_f1 (fractions) of the predicted texts against the examples' gold answers."""
    if not examples:
        return {name: 0.0 for name in QUESTION_ANSWERING_METRICS}
    preds = [{"prediction_text": text, "id": str(i)} for i, text in enumerate(predictions)]
    target = [
        {"answers": {"text": list(e.answers), "answer_start": list(e.starts)}, "id": str(i)}
        for i, e in enumerate(examples)
    ]
    scores = squad(preds, target)  # {"exact_match", "f1"}, in percent
    return {"exact_match": float(scores["exact_match"]) / 100, "answer_f1": float(scores["f1"]) / 100}


class SquadScores(Metric):
    """The SQuAD scores `names` of the windows seen since the last reset, as {name: value}
    (MetricCollection logs each as `<prefix>/<name>`). One metric for all of them: the n-best
    post-processing of every question runs once per validation, not once per score. States: each
    window's feature index, its token count and its start/end logits (flattened); compute() groups
    the windows by question with the encoder's `windows[split]` (encoder.py)."""

    full_state_update = False

    def __init__(self, names: list[str], encoder, split: str, n_best: int, max_answer_length: int):
        super().__init__()
        self.names, self.encoder, self.split = list(names), encoder, split
        self.n_best, self.max_answer_length = n_best, max_answer_length
        for state in ("feature_index", "lengths", "start_logits", "end_logits"):
            self.add_state(state, default=[], dist_reduce_fx="cat")

    def update(self, feature_index: torch.Tensor, attention_mask: torch.Tensor, start_logits, end_logits) -> None:
        keep = attention_mask.bool()  # right padding: a window's tokens come first
        self.feature_index.append(feature_index)
        self.lengths.append(keep.sum(dim=1))
        self.start_logits.append(start_logits.float()[keep])
        self.end_logits.append(end_logits.float()[keep])

    def compute(self) -> dict[str, torch.Tensor]:
        scores = qa_scores(self, self.encoder.windows[self.split])
        return {name: torch.tensor(scores[name]) for name in self.names}


def qa_scores(metric: SquadScores, windows) -> dict[str, float]:
    """Every question of the split that had a window evaluated (limit_*_batches may cut some)."""
    if not metric.feature_index:
        return squad_scores([], [])
    features = dim_zero_cat(metric.feature_index).tolist()
    lengths = dim_zero_cat(metric.lengths).tolist()
    starts = dim_zero_cat(metric.start_logits).split(lengths)
    ends = dim_zero_cat(metric.end_logits).split(lengths)
    by_feature = {f: i for i, f in enumerate(features)}
    per_example: dict[int, list[int]] = {}
    for f in sorted(by_feature):
        per_example.setdefault(windows.example_index[f], []).append(by_feature[f])
    offsets = {by_feature[f]: windows.offset_mapping[f] for f in by_feature}
    examples, predictions = [], []
    for index in sorted(per_example):
        example = windows.examples[index]
        examples.append(example)
        predictions.append(
            best_answer(
                per_example[index], starts, ends, offsets, example.context, metric.n_best, metric.max_answer_length
            )
        )
    return squad_scores(predictions, examples)


def build_qa_metrics(names: list[str], encoder, n_best: int, max_answer_length: int, prefix: str) -> MetricCollection:
    """A collection logging as `<prefix>/<name>`; val reads the encoder's val windows, test_* its test ones."""
    for name in names:
        if name not in QUESTION_ANSWERING_METRICS:
            raise ConfigError(f"task.metrics: '{name}' is unknown; valid: {', '.join(QUESTION_ANSWERING_METRICS)}.")
    split = "val" if prefix == "val" else "test"
    return MetricCollection(
        {"squad": SquadScores(names, encoder, split, n_best, max_answer_length)}, prefix=f"{prefix}/"
    )


def evaluate_batch(model, batch: dict, metrics: MetricCollection) -> None:
    """How an evaluation batch updates the metrics (FineTuner's hook): windows carry feature_index,
    not labels, and the model answers with start and end logits."""
    feature_index = batch.pop("feature_index")
    output = model(**batch)
    metrics.update(feature_index, batch["attention_mask"], output.start_logits, output.end_logits)


def qa_baseline(names: list[str], train: list, test: list) -> dict[str, float]:
    """The trivial reader fitted on the training answers, on the test questions: the context's first
    k words, k the median length in words of the training answers (the first gold answer of each)."""
    k = max(1, round(statistics.median(len(e.answers[0].split()) for e in train)))
    predictions = [" ".join(e.context.split()[:k]) for e in test]
    scores = squad_scores(predictions, test)
    return {f"test/{name}": scores[name] for name in names}

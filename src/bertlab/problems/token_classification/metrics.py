"""Token classification metrics: entity-level precision, recall and F1 with seqeval, and token
(word) accuracy; the main metric is entity F1.

Only the labelled positions are scored: in validation and test batches those are the first piece
of each word (encoder.py), so the predictions at those positions, in order, are the
word-level tag sequence of the sentence, which is what seqeval scores (as transformers'
run_ner.py does). seqeval, not our own chunking: it is the well-kept reference implementation of
conlleval's entity rule and of the strict IOB1/IOB2 schemes.

`task.tag_scheme`: IOB1 or IOB2 score in seqeval's strict mode with that scheme (an entity is a
well-formed chunk of the scheme; a predicted I-X after O is no entity under IOB2); null scores in
seqeval's default mode, conlleval's lenient rule.
"""

from __future__ import annotations

from collections import Counter

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.utilities import dim_zero_cat

from bertlab.core.errors import ConfigError
from bertlab.problems.metric_names import TOKEN_CLASSIFICATION_METRICS

IGNORE = -100


def seqeval_scores(y_true: list[list[str]], y_pred: list[list[str]], scheme: str | None) -> dict[str, float]:
    """Every metric of TOKEN_CLASSIFICATION_METRICS on word-level tag sequences."""
    from seqeval import metrics  # imported where used: only this problem needs it
    from seqeval import scheme as schemes

    kwargs = {} if scheme is None else {"mode": "strict", "scheme": getattr(schemes, scheme)}
    # no predicted (or no gold) entity: precision (recall) is 0, not a warning and a NaN
    entity = dict(zero_division=0, **kwargs)
    return {
        "entity_f1": float(metrics.f1_score(y_true, y_pred, **entity)),
        "entity_precision": float(metrics.precision_score(y_true, y_pred, **entity)),
        "entity_recall": float(metrics.recall_score(y_true, y_pred, **entity)),
        "token_accuracy": float(metrics.accuracy_score(y_true, y_pred)) if any(y_true) else 0.0,
    }


class TagScore(Metric):
    """One seqeval score over the labelled positions of every sentence seen since the last reset.

    States: the predicted and gold tag indices at the labelled positions (flattened) and the
    number of them per sentence, so compute() cuts them back into sentences."""

    full_state_update = False

    def __init__(self, name: str, labels: list[str], scheme: str | None):
        super().__init__()
        self.name, self.labels, self.scheme = name, [str(label) for label in labels], scheme
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("lengths", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        scored = target != IGNORE
        self.preds.append(preds[scored])
        self.target.append(target[scored])
        self.lengths.append(scored.sum(dim=1))

    def compute(self) -> torch.Tensor:
        lengths = dim_zero_cat(self.lengths).tolist() if self.lengths else []
        preds = dim_zero_cat(self.preds).tolist() if self.preds else []
        target = dim_zero_cat(self.target).tolist() if self.target else []
        y_true, y_pred = sentences(target, lengths, self.labels), sentences(preds, lengths, self.labels)
        return torch.tensor(seqeval_scores(y_true, y_pred, self.scheme)[self.name])


def sentences(flat: list[int], lengths: list[int], labels: list[str]) -> list[list[str]]:
    out, start = [], 0
    for n in lengths:
        out.append([labels[i] for i in flat[start : start + n]])
        start += n
    return out


def build_tag_metrics(names: list[str], labels: list[str], scheme: str | None, prefix: str) -> MetricCollection:
    """A collection logging as `<prefix>/<name>`, e.g. `val/entity_f1`."""
    for name in names:
        if name not in TOKEN_CLASSIFICATION_METRICS:
            raise ConfigError(f"task.metrics: '{name}' is unknown; valid: {', '.join(TOKEN_CLASSIFICATION_METRICS)}.")
    return MetricCollection({name: TagScore(name, labels, scheme) for name in names}, prefix=f"{prefix}/")


def tag_baseline(names: list[str], labels: list[str], scheme: str | None, train: list, test: list) -> dict[str, float]:
    """The trivial tagger fitted on the training tags, on the test sentences: every word gets the
    most common training tag (O in NER: no entity, entity F1 0, accuracy = the share of O)."""
    majority = Counter(tag for sentence in train for tag in sentence).most_common(1)[0][0]
    y_true = [[str(labels[t]) for t in sentence] for sentence in test]
    y_pred = [[str(labels[majority])] * len(sentence) for sentence in test]
    scores = seqeval_scores(y_true, y_pred, scheme)
    return {f"test/{name}": scores[name] for name in names}

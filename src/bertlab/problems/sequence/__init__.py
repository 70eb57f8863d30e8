"""Sequence classification and regression (GLUE, BBC News, the csv task): one label per example.

Reader data/readers.py (shared: pretraining's corpus and `bertlab predict` read with it too),
tokenisation and batches data/datamodule.py's SequenceEncoder (shared with distillation's teacher
pass), metrics problems/metrics.py (GLUE's: accuracy, F1, MCC; Pearson, Spearman); the head is
AutoModelForSequenceClassification.
"""

from transformers import AutoModelForSequenceClassification

from bertlab.data.datamodule import SequenceEncoder
from bertlab.data.readers import read_task
from bertlab.problems.metric_names import CLASSIFICATION_METRICS, REGRESSION_METRICS
from bertlab.problems.metrics import baseline_scores, build_metrics, evaluate_logits
from bertlab.problems.problem import Problem


def _problem(name: str, regression: bool) -> Problem:
    return Problem(
        name=name,
        auto_class=AutoModelForSequenceClassification,
        read=lambda task: read_task(task, name),  # the readers' label kind is the problem's name
        encoder=lambda task, tokenizer: SequenceEncoder(tokenizer, task.max_length, regression),
        metrics=lambda task, num_labels, encoder: lambda prefix: build_metrics(list(task.metrics), num_labels, prefix),
        evaluate=evaluate_logits(name),
        baseline=lambda task, num_labels, train, test: baseline_scores(
            list(task.metrics), num_labels, name, train, test
        ),
        check=lambda cfg: None,  # their keys are checked by run/checks.py and the readers
        num_labels=lambda task: 1 if regression else len(task.labels),
        metric_names=REGRESSION_METRICS if regression else CLASSIFICATION_METRICS,
        sequence=True,
        regression=regression,
        outputs="one label per text",
        pipeline_tag="text-classification",
    )


CLASSIFICATION = _problem("classification", regression=False)
REGRESSION = _problem("regression", regression=True)

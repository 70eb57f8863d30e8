"""Sequence classification and regression (GLUE, BBC News, the csv task): one label per example."""

from transformers import AutoModelForSequenceClassification

from bertlab.data.readers import read_task
from bertlab.problems.problem import Problem
from bertlab.training.metrics import baseline_scores


def _problem(name: str) -> Problem:
    return Problem(
        name=name,
        auto_class=AutoModelForSequenceClassification,
        read=read_task,
        encoder=lambda task, tokenizer: None,  # FewSampleDataModule's default: SequenceEncoder
        metrics=lambda task, num_labels, encoder: None,  # FineTuner's default: training/metrics.py
        baseline=lambda task, num_labels, train, test: baseline_scores(
            list(task.metrics), num_labels, name, train, test
        ),
        check=lambda cfg: None,  # their keys are checked by config/checks.py and the readers
        num_labels=lambda task: 1 if name == "regression" else len(task.labels),
    )


CLASSIFICATION = _problem("classification")
REGRESSION = _problem("regression")

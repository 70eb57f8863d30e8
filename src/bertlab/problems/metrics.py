"""Task metrics per GLUE convention, computed with torchmetrics.

Every metric here is "higher is better", so model selection always maximises its metric
(`selection_metric`: the main metric unless `task.select_metric` says otherwise).
"""

import functools
from collections import Counter

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryF1Score,
    MulticlassAccuracy,
    MulticlassMatthewsCorrCoef,
)
from torchmetrics.regression import PearsonCorrCoef, SpearmanCorrCoef

from bertlab.core.errors import ConfigError
from bertlab.problems.metric_names import CLASSIFICATION_METRICS, METRICS_BY_PROBLEM, REGRESSION_METRICS


class MatthewsCorrCoef(MulticlassMatthewsCorrCoef):
    """Matthews correlation with GLUE's convention: 0 when either side is constant.

    torchmetrics applies its own edge-case rule there (a constant predictor can score -0.58 or
    +0.11), whereas GLUE scores CoLA with scikit-learn, which returns 0. A collapsed run predicting
    one class must read as "no correlation", so compute() uses scikit-learn's formula on the
    confusion matrix that torchmetrics accumulates.
    """

    def compute(self) -> torch.Tensor:
        confmat = self.confmat.double()
        true_sum, pred_sum, n = confmat.sum(1), confmat.sum(0), confmat.sum()
        covariance = confmat.trace() * n - true_sum @ pred_sum
        denominator = torch.sqrt((n**2 - pred_sum @ pred_sum) * (n**2 - true_sum @ true_sum))
        if denominator == 0:
            return torch.tensor(0.0)
        return (covariance / denominator).float()


def _metric(name: str, num_labels: int):
    if name == "accuracy":
        # micro average = plain accuracy (torchmetrics' multiclass default is macro)
        return MulticlassAccuracy(num_classes=num_labels, average="micro")
    if name == "f1":
        if num_labels != 2:
            raise ConfigError(
                f"task.metrics contains 'f1', which is binary F1 of class 1; this task has {num_labels} labels."
            )
        return BinaryF1Score()
    if name == "mcc":
        return MatthewsCorrCoef(num_classes=num_labels)
    if name == "pearson":
        return PearsonCorrCoef()
    if name == "spearman":
        return SpearmanCorrCoef()
    raise ConfigError(
        f"task.metrics: unknown metric '{name}'; valid: {', '.join(CLASSIFICATION_METRICS + REGRESSION_METRICS)}."
    )


def check_metrics(names: list[str], main_metric: str, problem: str, valid: tuple[str, ...] | None = None) -> None:
    """task.metrics against `valid`, the metrics of the task's problem (its Problem's metric_names;
    None: the packaged problem named `problem`'s, problems/metric_names.py)."""
    valid = METRICS_BY_PROBLEM[problem] if valid is None else valid
    for name in names:
        if name not in valid:
            raise ConfigError(f"task.metrics: '{name}' does not apply to {problem}; valid: {', '.join(valid)}.")
    if main_metric not in names:
        raise ConfigError(f"task.main_metric='{main_metric}' must be one of task.metrics {list(names)}.")


# The paper's code keeps the best checkpoint by validation accuracy where the task reports it,
# else MCC (CoLA), else Spearman (STS-B) -- run_glue.py's `if "val_acc" ... elif "val_mcc" ...
# elif "val_spearmanr"` chain. So MRPC selects on accuracy and reports F1.
PAPER_SELECTION = ("accuracy", "mcc", "spearman")


def selection_metric(names: list[str], main_metric: str, select_metric: str | None) -> str:
    """The validation metric whose best value picks the best weights (`task.select_metric`):
    null = the main metric; `paper` = the paper's rule (PAPER_SELECTION); else a metric of the task."""
    if select_metric is None:
        return main_metric
    if select_metric == "paper":
        return next((m for m in PAPER_SELECTION if m in names), main_metric)
    if select_metric not in names:
        raise ConfigError(
            f"task.select_metric={select_metric!r} is not one of task.metrics {list(names)}; "
            "valid: one of those, paper (the official code's rule) or null (= task.main_metric)."
        )
    return select_metric


def build_metrics(names: list[str], num_labels: int, prefix: str) -> MetricCollection:
    """A collection logging as `<prefix>/<name>`, e.g. `val/accuracy`."""
    return MetricCollection({name: _metric(name, num_labels) for name in names}, prefix=f"{prefix}/")


def predictions(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """What the metrics compare with the labels: class indices (per token for token
    classification), or the regression output. `kind`: a Problem's (problems/problem.py)."""
    return logits.squeeze(-1).float() if kind == "regression" else logits.argmax(dim=-1)


def evaluate_logits(kind: str):
    """(model, batch, metrics): an evaluation batch's predictions (`predictions`) against its labels,
    the evaluation of every problem whose metrics compare logits with labels (FineTuner's default:
    a classifier's). A partial, not a closure: the LightningModule that holds it stays picklable."""
    return functools.partial(_evaluate_logits, kind=kind)


def _evaluate_logits(model, batch, metrics, kind: str) -> None:
    labels = batch.pop("labels")
    metrics.update(predictions(model(**batch).logits, kind), labels)


def baseline_scores(
    names: list[str], num_labels: int, kind: str, train_labels: list, test_labels: list
) -> dict[str, float]:
    """Scores of the trivial predictor fitted on the training labels, on the test labels.

    Classification: always the majority training class. Regression: always the training mean;
    its correlations are undefined (zero variance), reported as 0.0 (no correlation).
    The report calls a run failed when it does no better than this.
    """
    if kind == "regression":
        return {f"test/{name}": 0.0 for name in names}
    majority = Counter(train_labels).most_common(1)[0][0]
    target = torch.tensor(test_labels)
    constant = torch.full_like(target, majority)
    scores = {}
    for name in names:
        metric = _metric(name, num_labels)
        scores[f"test/{name}"] = float(metric(constant, target))
    return scores

"""What a task problem supplies to a run: its reader, its tokenisation and batches, its
AutoModelFor* class, its metrics and baseline, and the rules for its own task keys.

run/fit.py asks the problem of `task.problem` (registry.py) for each of these instead of testing
the problem name itself, so a new problem (multiple choice, question answering) is one module
here plus its pieces in data/ and training/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from omegaconf import DictConfig


@dataclass(frozen=True)
class Problem:
    name: str
    auto_class: type  # transformers' AutoModelFor* class of the head
    read: Callable[[DictConfig], dict]  # task -> {"train", "dev"[, "test"]} pools of examples
    encoder: Callable[[DictConfig, object], object | None]  # (task, tokenizer) -> FewSampleDataModule's encoder
    metrics: Callable[[DictConfig, int], Callable | None]  # (task, num_labels) -> prefix -> MetricCollection
    baseline: Callable[[DictConfig, int, list, list], dict]  # (task, num_labels, train labels, test labels)
    check: Callable[[DictConfig], None]  # the rules of the problem's own keys (config/checks.py calls it)
    num_labels: Callable[[DictConfig], int]  # once read_task has filled task.labels
    # Optional, for problems whose evaluation is not logits vs labels (question answering):
    # (task, encoder) -> prefix -> MetricCollection, used instead of `metrics` (the metrics read the
    # encoder's per-split state: which window is of which question), and (model, batch, metrics):
    # how an evaluation batch updates them (FineTuner). None: `metrics` and FineTuner's default.
    encoder_metrics: Callable[[DictConfig, object], Callable] | None = None
    evaluate: Callable | None = None

    def metrics_factory(self, task: DictConfig, num_labels: int, encoder) -> Callable | None:
        """What FineTuner's `metrics_factory` gets (run/fit.py, run/evaluate.py)."""
        if self.encoder_metrics is not None:
            return self.encoder_metrics(task, encoder)
        return self.metrics(task, num_labels)

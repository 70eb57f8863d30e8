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

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

from bertlab.core.errors import ConfigError


@dataclass(frozen=True)
class Problem:
    name: str
    auto_class: type  # transformers' AutoModelFor* class of the head
    read: Callable[[DictConfig], dict]  # task -> {"train", "dev"[, "test"]} pools of examples
    encoder: Callable[[DictConfig, object], object | None]  # (task, tokenizer) -> FewSampleDataModule's encoder
    # (task, num_labels, encoder) -> prefix -> MetricCollection; None: FineTuner's default (GLUE's). The
    # encoder is there for metrics that read its per-split state (question answering: which window is
    # of which question)
    metrics: Callable[[DictConfig, int, object], Callable | None]
    baseline: Callable[[DictConfig, int, list, list], dict]  # (task, num_labels, train labels, test labels)
    check: Callable[[DictConfig], None]  # the rules of the problem's own keys (config/checks.py calls it)
    num_labels: Callable[[DictConfig], int]  # once read_task has filled task.labels
    # (model, batch, metrics): how an evaluation batch updates the metrics, for problems whose
    # evaluation is not logits vs labels (question answering); None: FineTuner's default
    evaluate: Callable | None = None


def check_task_beyond_sequences(cfg: DictConfig, keys: tuple, start_from: str, samples: str, pooler: bool) -> None:
    """The rules every problem beyond one-label-per-sequence shares (token classification, multiple
    choice, question answering): its own task keys are set (a fork's task YAML may lack them);
    augment= and distill=, built for one sequence and one label, are off; task.sampling=paper (the
    official code's GLUE draws) is off, as `samples` are drawn at random; reinit_pooler=true is off
    where the head reads every token and the model has no pooler (`pooler` false).
    `start_from`: the packaged tasks to copy, e.g. "task=tokens (your own files) or task=conll2003"."""
    task, problem = cfg.task, cfg.task.problem
    words = problem.replace("_", " ")
    lacking = [f"task.{key}" for key in keys if key not in task]
    if lacking:
        raise ConfigError(
            f"task.problem={problem} needs {', '.join(lacking)}, which task={task.name} does not set; "
            f"start from {start_from}."
        )
    for group in ("augment", "distill"):
        if group in cfg and cfg[group].name != "none":
            raise ConfigError(
                f"{group}={cfg[group].name} is for sequence tasks (classification, regression); "
                f"task.problem={problem} does not support it: drop {group}= (the default, {group}=none)."
            )
    if task.sampling == "paper":
        raise ConfigError(
            f"task.sampling=paper reproduces the official code's GLUE draws; {words} samples {samples} at random "
            "by task.data_seed: use task.sampling=balanced."
        )
    if not pooler and cfg.reinit_pooler:
        raise ConfigError(
            f"reinit_pooler=true does not apply to {words}: its head reads every token's hidden state, and the "
            "model has no pooler; use reinit_pooler=false (reinit=L re-draws the top blocks)."
        )

"""What a task problem supplies to a run: the interface every kind of task implements, written once.

A kind of task is one folder, problems/<kind>/: its reader (reader.py), its encoder (encoder.py:
tokenisation, labels and batches, a data/encoder.py `Encoder`), its metrics (metrics.py) and, in its
`__init__.py`, the `Problem` below that ties them together. `task.problem` names it (registry.py: a
packaged name, or a fork's module). Code outside problems/ asks the Problem (`problem_of(task)`)
what it needs to know (`sequence`, `regression`, ...) rather than testing the problem's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from omegaconf import DictConfig

from bertlab.core.errors import ConfigError


@dataclass(frozen=True)
class Problem:
    """One kind of task: every field is read by the generic code (run/fit.py, run/checks.py,
    the methods and approaches), none of which tests `task.problem` itself."""

    name: str
    """The problem's name, for messages (a packaged one is its `task.problem` value)."""

    auto_class: type
    """transformers' AutoModelFor* class of its head, e.g. AutoModelForTokenClassification."""

    read: Callable[[DictConfig], dict]
    """task -> {"train", "dev"[, "test"]} pools of examples; may fill task.labels where they are inferred."""

    encoder: Callable[[DictConfig, object], object]
    """(task, tokenizer) -> the data/encoder.py `Encoder` FewSampleDataModule tokenises and batches with."""

    metrics: Callable[[DictConfig, int, object], Callable]
    """(task, num_labels, encoder) -> (prefix -> MetricCollection logging `<prefix>/<name>`). The encoder
    is there for metrics that read its per-split state (question answering: which window is of which question)."""

    evaluate: Callable | None
    """(model, batch, metrics): how an evaluation batch updates the metrics; None: the logits' argmax
    against the labels (problems/metrics.py `evaluate_logits`)."""

    baseline: Callable[[DictConfig, int, list, list], dict]
    """(task, num_labels, train labels, test labels) -> result.json's `baseline`: the trivial predictor's scores."""

    check: Callable[[DictConfig], None]
    """cfg -> None or a ConfigError: the rules of the problem's own task keys (run/checks.py calls it)."""

    num_labels: Callable[[DictConfig], int]
    """task -> the head's number of outputs (once `read` has filled task.labels)."""

    metric_names: tuple[str, ...]
    """The metrics task.metrics may name (problems/metric_names.py)."""

    sequence: bool = False
    """One label per text (classification, regression): the heads, methods and approaches built for
    one vector per example (head=, aux=, peft=prefix, approach=prompt|setfit, predict) apply."""

    regression: bool = False
    """The label is a number, not a class: MSE loss, the output squeezed, no classes to draw by."""

    outputs: str = "one label per text"
    """What its head predicts, in words: messages that say why a sequence head does not fit."""

    pipeline_tag: str | None = None
    """The Hugging Face pipeline of a saved model (its model card); None: none fits."""

    @property
    def kind(self) -> str:
        """What the helpers below problems/ that are keyed by a kind of label take (model/load.py
        load_config, problems/metrics.py, prompt/, pretrain/settings.py check_pretrain): "regression"
        (one number per text), "classification" (one class per text), else the problem's name."""
        if self.sequence:
            return "regression" if self.regression else "classification"
        return self.name

    @property
    def classifies_texts(self) -> bool:
        """One class per text (sequence classification): label names, class-balanced draws, SetFit."""
        return self.sequence and not self.regression


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

"""One approach=setfit run on the run's splits: its checks, setfit's two stages, its scores and its
part of result.json (the keys and metric names a fine-tuning run writes: run/fit.py).

What follows setfit (huggingface/setfit 1.2.0, `trainer.py`, `sampler.py`, `modeling.py`), and
where we depart:

- Stage 1 is `setfit.Trainer.train_embeddings`: `ContrastiveDataset` pairs every training example
  with every other and itself (`shuffle_combinations`, a fixed shuffle), positive when the labels
  match; `sampling_strategy=oversampling` repeats the rarer kind up to the other's count
  (`num_iterations=N` instead: N * n_train of each); CosineSimilarityLoss; Sentence Transformers'
  trainer (AdamW, linear decay after `warmup_proportion`, weight decay `l2_weight`). All of
  approach.* maps one to one onto setfit's TrainingArguments (`training_arguments`).
- Stage 2 is `setfit.Trainer.train_classifier` on the training split's embeddings: scikit-learn's
  LogisticRegression with its defaults (head=logistic), or setfit's SetFitHead trained with
  cross-entropy (head=differentiable; `head_epochs` at `head_learning_rate`).
- Validation: setfit trains a fixed number of steps and keeps the last weights; it has no
  selection on a held-out split (its `eval_strategy` reports the embedding loss only). So a
  SetFit run validates once, at the end: `val/<metric>` is the final model's, and `test_best/` equals
  `test_last/` (best_step is the last step). The validation split is never trained on.
- debug=fast: `limits.max_steps` caps stage 1 (setfit's own max_steps, which also caps the pairs it
  draws) and the differentiable head to one epoch (core/limits.py's rule: a stage that trains by
  epochs gets the cap; one given its own approach.max_steps keeps it).
- No Lightning loop: no metrics.csv rows and nothing sent to the dashboards (W&B, TensorBoard)
  during training; no resume of a killed run (it restarts; SetFit runs take minutes). setfit's own
  reporting is off (`report_to="none"`), and its checkpoints are never written.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bertlab.core.errors import ConfigError
from bertlab.core.extras import require
from bertlab.core.lines import say
from bertlab.core.values import check_count, check_number, check_positive, invalid
from bertlab.problems.metrics import build_metrics, selection_metric
from bertlab.problems.registry import problem_of
from bertlab.setfit.model import HEADS, build_setfit_model, model_texts, probabilities

SAMPLING_STRATEGIES = ("oversampling", "undersampling", "unique")
STAGE1_DIR = "setfit"  # setfit's output_dir (nothing is saved there: save_strategy="no")

# fine-tuning's options and their defaults: any other value does not apply to SetFit and is refused
FINETUNE_ONLY = {
    "optimizer.name": "adamw",
    "schedule.name": "linear",
    "head.name": "pooler",
    "reinit": 0,
    "reinit_pooler": False,
    "llrd": 1.0,
    "mixout": 0.0,
    "prior_wd": 0.0,
    "distill.name": "none",
    "pretrain.name": "none",
    "trainer.compile": False,
}


def is_setfit(cfg: DictConfig) -> bool:
    """A run (or a saved run's config) of approach=setfit; a config without the group is finetune."""
    return OmegaConf.select(cfg, "approach.name", default="finetune") == "setfit"


def check_setfit(cfg: DictConfig) -> None:
    """approach=setfit's rules, before any data or model loads (run/checks.py calls it)."""
    # the command line's approach=setfit is checked before Hydra starts (config/keys.py); this one
    # also covers the option set in a config file (an experiment preset) or a saved run's config
    require("approach=setfit")
    problem = problem_of(cfg.task)
    if problem.regression:
        raise ConfigError(
            f"approach=setfit does not do regression (task={cfg.task.name} is task.problem=regression): setfit's "
            "heads are classifiers and its pairs need labels that match or not; use approach=finetune."
        )
    if not problem.classifies_texts:
        raise ConfigError(
            f"approach=setfit classifies whole texts; task={cfg.task.name} is task.problem={cfg.task.problem}, which it "
            "does not support: use approach=finetune."
        )
    for key, default in FINETUNE_ONLY.items():
        value = OmegaConf.select(cfg, key, default=default)
        if value != default:
            raise ConfigError(
                f"{key}={value} is a fine-tuning option and does not apply to approach=setfit (its encoder trains "
                f"on sentence pairs with setfit's own optimizer and schedule: approach.*); drop it "
                f"(the default, {key}={default})."
            )
    a = cfg.approach
    if a.head not in HEADS:
        raise ConfigError(f"approach.head={a.head} is invalid; valid: {', '.join(HEADS)}.")
    if a.sampling_strategy not in SAMPLING_STRATEGIES:
        raise ConfigError(
            f"approach.sampling_strategy={a.sampling_strategy} is invalid; valid: {', '.join(SAMPLING_STRATEGIES)}."
        )
    check_count(a.num_iterations, "approach.num_iterations", allow=(None,))
    if a.max_steps != -1:
        check_count(a.max_steps, "approach.max_steps")
    for key in ("num_epochs", "batch_size", "head_epochs", "head_batch_size"):
        check_count(a[key], f"approach.{key}")
    for key in ("body_learning_rate", "head_learning_rate", "body_head_learning_rate"):
        check_positive(a[key], f"approach.{key}", "it must be a number > 0", finite=False)  # inf passes, as before
    check_number(
        a.warmup_proportion,
        "approach.warmup_proportion",
        "a fraction of the steps in [0, 1]",
        low=0,
        high=1,
        finite=False,
    )
    check_number(a.l2_weight, "approach.l2_weight", "a weight decay >= 0", low=0, finite=False)
    if not isinstance(a.end_to_end, bool):
        raise invalid("approach.end_to_end", a.end_to_end, "true or false")
    if a.end_to_end and a.head != "differentiable":
        raise ConfigError(
            "approach.end_to_end=true trains the encoder through the head, which needs approach.head=differentiable "
            "(a logistic regression has no gradient)."
        )


def stage1_steps(cfg: DictConfig) -> int:
    """setfit's max_steps: approach.max_steps, else limits.max_steps (debug=fast), else -1 (epochs)."""
    cap = (cfg.get("limits") or {}).get("max_steps")
    return cfg.approach.max_steps if cfg.approach.max_steps != -1 or cap is None else cap


def training_arguments(cfg: DictConfig, output_dir: Path):
    """setfit's TrainingArguments from approach.* (tuples: (stage 1, stage 2), setfit's convention)."""
    from setfit import TrainingArguments

    a = cfg.approach
    capped = (cfg.get("limits") or {}).get("max_steps") is not None
    return TrainingArguments(
        output_dir=str(output_dir),
        batch_size=(a.batch_size, a.head_batch_size),
        num_epochs=(a.num_epochs, 1 if capped else a.head_epochs),
        max_steps=stage1_steps(cfg),
        sampling_strategy=a.sampling_strategy,
        num_iterations=a.num_iterations,
        body_learning_rate=(a.body_learning_rate, a.body_head_learning_rate),
        head_learning_rate=a.head_learning_rate,
        end_to_end=a.end_to_end,
        warmup_proportion=a.warmup_proportion,
        l2_weight=a.l2_weight,
        max_length=cfg.task.max_length,
        seed=cfg.seed,
        report_to="none",  # the run's record is result.json; no W&B run of the HF Trainer's own
        save_strategy="no",
        show_progress_bar=bool(cfg.trainer.enable_progress_bar),
    )


def scores(probs: np.ndarray, labels: list[int], names: list[str], num_labels: int, prefix: str) -> dict[str, float]:
    """`<prefix>/<metric>` of the predicted classes, by the same torchmetrics a fine-tuning run uses."""
    import torch

    metrics = build_metrics(names, num_labels, prefix)
    metrics.update(torch.as_tensor(probs).argmax(dim=-1), torch.as_tensor(labels))
    return {k: float(v) for k, v in metrics.compute().items()}


def train_setfit(cfg: DictConfig, splits: dict, run_dir: Path) -> tuple[dict, object]:
    """Both stages on splits["train"], scored on val and test: (result.json's part, the model)."""
    from datasets import Dataset

    # setfit's own trainer, not a Lightning one (tests/test_debug_fast.py asks every Lightning Trainer to
    # be built by core/limits.py): `limits` caps it through its TrainingArguments (stage1_steps)
    from setfit import Trainer as SetFitTrainer

    task = cfg.task
    labels = list(task.labels)
    names = list(task.metrics)
    batch = cfg.data.eval_batch_size
    model = build_setfit_model(cfg.model.name_or_path, labels, cfg.approach.head, task.max_length, cfg.seed)
    train = splits["train"]
    texts, targets = model_texts(model, train), [int(e.label) for e in train]
    args = training_arguments(cfg, Path(run_dir) / STAGE1_DIR)
    trainer = SetFitTrainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": texts, "label": targets}))
    if not cfg.trainer.enable_progress_bar:  # setfit does not pass its show_progress_bar to stage 1's trainer
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.st_trainer.args.disable_tqdm = True
        for callback in (ProgressCallback, PrinterCallback):  # the loss dicts: said below instead
            trainer.st_trainer.remove_callback(callback)

    start = time.time()
    trainer.train_embeddings(texts, targets, args=args)  # stage 1 (setfit.Trainer.train does both, in this order)
    stage1_s = time.time() - start
    state = trainer.st_trainer.state
    pairs = len(trainer.st_trainer.train_dataset)
    losses = [row["embedding_loss"] for row in state.log_history if "embedding_loss" in row]
    say(
        f"setfit stage 1: {pairs} pairs, {state.global_step} steps of {args.embedding_batch_size}, {stage1_s:.1f} s; "
        f"embedding loss {', '.join(f'{v:.4f}' for v in losses)} (every {args.logging_steps} steps)"
    )
    start = time.time()
    trainer.train_classifier(texts, targets, args=args)  # stage 2: the head on the embeddings
    stage2_s = time.time() - start
    say(f"setfit stage 2: head={cfg.approach.head} on {len(train)} embeddings, {stage2_s:.1f} s")

    metrics = scores(
        probabilities(model, splits["val"], batch), [e.label for e in splits["val"]], names, len(labels), "val"
    )
    test = scores(
        probabilities(model, splits["test"], batch), [e.label for e in splits["test"]], names, len(labels), "x"
    )
    for prefix in ("test_last", "test_best"):  # one model: the last is the selected one (module docstring)
        metrics.update({f"{prefix}/{k.split('/', 1)[1]}": v for k, v in test.items()})
    problem = problem_of(task)
    record = {
        "metrics": metrics,
        "global_steps": state.global_step,
        "best_step": state.global_step,
        "validations": 1 if splits["val"] else 0,
        "select_metric": selection_metric(names, task.main_metric, task.select_metric),
        "baseline": problem.baseline(task, len(labels), targets, [e.label for e in splits["test"]]),
        "split_sizes": {name: len(examples) for name, examples in splits.items()},
        "world_size": 1,
        "precision": "32-true",  # setfit's use_amp is off: float32 throughout
        "param_dtype": str(next(model.model_body.parameters()).dtype).removeprefix("torch."),
        "head": "new",
        # texts per second of stage 1 (two per pair)
        "train_samples_per_s": 2 * state.global_step * args.embedding_batch_size / stage1_s if stage1_s else None,
        "setfit": {
            "pairs": pairs,
            "loss": type(trainer.st_trainer.loss).__name__,  # setfit's CosineSimilarityLoss (args.loss)
            "head": cfg.approach.head,
            "sampling_strategy": cfg.approach.sampling_strategy,
            "num_iterations": cfg.approach.num_iterations,
            "max_steps": args.max_steps,
            "embedding_loss_first": losses[0] if losses else None,
            "embedding_loss_last": losses[-1] if losses else None,
            "stage1_s": round(stage1_s, 3),
            "stage2_s": round(stage2_s, 3),
        },
    }
    return record, model

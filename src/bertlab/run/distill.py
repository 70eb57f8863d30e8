"""Self-distillation's teacher (`distill=self`), a step of run/fit.py's `train`: `teacher_step` gives
the student what it needs, the teacher's soft labels and the distillation loss, and result.json's
`distill` record; the student is then the run's ordinary fit step.

1. The teacher: an ordinary fit with the run's settings (fit.py's fit step, train_and_test), in
   `<run_dir>/teacher/` (its metrics.csv, its resume checkpoint, its weights with
   save_weights=true); or the saved run `distill.teacher=DIR` (methods/distill.py checks it).
   It sees validation labels only to pick its best weights, as every run does.
2. Its logits on the training split, once, from its best weights by validation, in eval mode
   (no dropout), saved with its metrics in `<run_dir>/teacher/soft_labels.pt`.
3. The student (fit.py `train`, after this step): a fresh model from the pre-trained weights
   (build_model seeds it with `init_seed`, as any run), trained on methods/distill.py's loss and
   scored on the same splits as every run.
   Its fit is the run's: result.json `metrics`; the teacher's go under `distill`.

Resume (resume=true): a job killed while the teacher trains resumes the teacher from its own
checkpoint (`<run_dir>/teacher/resume/`); killed while the student trains, the same command finds
soft_labels.pt, does not train the teacher again, and resumes the student from `<run_dir>/resume/`.
soft_labels.pt records the job's overrides and the training examples (their fingerprint): a file
of another job or other data is not used. With resume=false the teacher is always trained.
"""

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch
from omegaconf import DictConfig
from transformers import DataCollatorWithPadding

from bertlab.callbacks.resume import remove_resume_state
from bertlab.core.atomic import save_torch_atomic
from bertlab.core.devices import resolve_accelerator
from bertlab.core.errors import ConfigError
from bertlab.core.lines import say
from bertlab.core.record import read_result
from bertlab.data.datamodule import tokenize
from bertlab.data.token_cache import examples_fingerprint
from bertlab.heads.fusion import fusion_of
from bertlab.loggers.build import finish_wandb
from bertlab.methods.distill import check_teacher_run, distillation_loss, teacher_logits
from bertlab.problems.registry import problem_of
from bertlab.run.approach import approach_of
from bertlab.run.saved_run import SavedRunError, load_saved_config, saved_model_dir

if TYPE_CHECKING:
    from bertlab.run.fit import Run, TaskData

TEACHER_DIR = "teacher"
SOFT_LABELS_FILE = "soft_labels.pt"


class Teacher(NamedTuple):
    """What the teacher step gives the run: the student's soft labels and loss, and result.json's `distill`."""

    soft_labels: torch.Tensor  # the teacher's logits, one row per training example, in their order
    loss: partial  # methods/distill.py's distillation_loss with the run's alpha and temperature
    record: dict  # result.json's `distill`


def teacher_step(cfg: DictConfig, data: "TaskData", run: "Run", fit: Callable) -> Teacher:
    """The teacher of a distill=self run on `data` (the student's own splits): trained now by `fit`
    (fit.py's fit step, train_and_test, handed in: fit.py imports this module) in
    `<run_dir>/teacher/`, or the saved run distill.teacher names; its soft labels on the training
    split, the student's loss, and result.json's `distill`."""
    regression = problem_of(cfg.task).regression
    d = cfg.distill
    start = time.time()
    if d.teacher is None:
        teacher = trained_teacher(cfg, data, run, fit)
    else:
        teacher = saved_teacher(cfg, data)
    teacher_s = round(time.time() - start, 3)
    say(
        f"student: fine-tuning from the pre-trained weights on the teacher's soft labels (alpha={d.alpha}, T={d.temperature})"
    )
    loss = partial(distillation_loss, alpha=float(d.alpha), temperature=float(d.temperature), regression=regression)
    record = {
        "alpha": float(d.alpha),
        "temperature": float(d.temperature),
        "teacher": "self" if d.teacher is None else str(Path(d.teacher).expanduser().resolve()),
        "teacher_metrics": teacher["metrics"],  # val/ (its best validation), test_last/, test_best/
        "teacher_best_step": teacher["best_step"],
        # the teacher's part of the job (its fit and logits; 0-ish when reused); the student's
        # startup_s, from the process start, includes it
        "teacher_s": teacher_s,
    }
    return Teacher(teacher["logits"], loss, record)


def trained_teacher(cfg, data: "TaskData", run: "Run", fit: Callable) -> dict:
    """The teacher's soft labels, metrics and best step: trained now, or by an earlier attempt of
    this same job that was killed during the student (soft_labels.pt)."""
    folder = Path(run.run_dir) / TEACHER_DIR
    overrides = run.overrides
    path = folder / SOFT_LABELS_FILE
    owner = {
        "overrides": None if overrides is None else list(overrides),
        "examples": examples_fingerprint(data.splits["train"]),
    }
    if cfg.resume and path.is_file():
        try:
            saved = torch.load(path, weights_only=True)
        except Exception as err:  # torn or foreign: train the teacher again
            say(f"teacher: {path} cannot be read ({type(err).__name__}); training the teacher again")
            saved = None
        if saved is not None and all(saved.get(k) == v for k, v in owner.items()):
            say(f"teacher: soft labels of an earlier attempt of this job, {path}")
            return saved
    say(f"teacher: fine-tuning with the run's settings in {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    fitted = fit(cfg, data, run._replace(run_dir=folder, run_name=f"{run.run_name}-teacher"))
    finish_wandb()  # the student opens a W&B run of its own
    remove_resume_state(folder)  # the teacher is done: its checkpoint would never be used
    dm = fitted.datamodule
    device = fitted.trainer.strategy.root_device
    logits = teacher_logits(fitted.module.model, dm.encoded["train"], dm.collate, cfg.data.eval_batch_size, device)
    fitted.module.cpu()
    teacher = {"logits": logits, "metrics": fitted.record["metrics"], "best_step": fitted.record["best_step"], **owner}
    save_torch_atomic(path, teacher)
    say(f"teacher: soft labels of {len(logits)} training examples in {path}")
    return teacher


def saved_teacher(cfg, data) -> dict:
    """A saved run (`distill.teacher=DIR`) as the teacher, checked against this run's data
    (methods/distill.py), and its logits on the training split: the run's model rebuilt as
    `bertlab predict` and `evaluate` rebuild it (fit.load_trained_model: its own head, whatever
    head= it trained with; its own tokenizer), reading the text as it was trained to (its
    task.max_length), so the soft labels are the teacher's own outputs on these examples."""
    teacher = cfg.distill.teacher
    run = Path(teacher).expanduser()
    try:
        model_dir = saved_model_dir(run)
        teacher_cfg = load_saved_config(model_dir)
    except SavedRunError as err:
        raise ConfigError(f"distill.teacher={teacher}: {err}") from None
    record = read_result(run)
    check_teacher_run(teacher, record, teacher_cfg.task, cfg.task, data.fingerprint)
    say(f"teacher: the saved run {run} ({teacher_cfg.head.name} head), checked against this run's examples")
    tokenizer, model = approach_of(teacher_cfg).load_trained(teacher_cfg, model_dir)
    regression = problem_of(cfg.task).regression
    items = tokenize(data.splits["train"], tokenizer, teacher_cfg.task.max_length, regression)
    fusion = fusion_of(model)
    if fusion is not None:  # a teacher trained with side features reads them, scaled by its own statistics
        items = [{**item, **fusion.scaler.transform(e.features)} for item, e in zip(items, data.splits["train"])]
    device = "cuda" if resolve_accelerator(cfg.trainer.accelerator) in ("cuda", "gpu") else "cpu"
    logits = teacher_logits(model, items, DataCollatorWithPadding(tokenizer), cfg.data.eval_batch_size, device)
    return {"logits": logits, "metrics": record["metrics"], "best_step": record.get("best_step")}

"""The per-run record `result.json`, read by the report and by sweep resume: its schema and its I/O.

Written atomically (atomic.py): a reader never sees half a file, and a run killed while
writing, or a full disk, leaves the previous record intact.

The keys, one record per job (run/job.py writes it, whatever the outcome; NaN/inf become null):

    status              ok | failed | diverged | interrupted (run/outcome.py)
    error               None, or one message for the user
    diverged_at_step    the step whose loss was NaN/inf (status diverged only)
    task, main_metric   the task's name and the metric it reports
    settings            the choices that define a run, as the report groups it (SETTINGS below)
    swept               the keys the command line set (the report compares runs along these)
    overrides           the job's command-line overrides (sweep resume matches a folder's job by them)
    metrics             val/<m> of the best validation, test_last/<m>, test_best/<m>; {} unless ok
    run_dir, devices, pid, started_at, duration_s    where, on what and when the job ran

and, when the run got as far as testing (fit.py): select_metric, best_step, validations, baseline,
split_sizes, data_fingerprint (a content hash of each drawn split and the label names: data/fingerprint.py),
augment (training-set size before and after: data/augment.py), global_steps, world_size, precision,
param_dtype, head, diagnostics (callbacks/diagnostics.py) and
the speed figures (train_samples_per_s, padding_efficiency, startup_s, model_tflops_per_s, mfu,
first_step_at, token_cache_hits, compiled_graphs). A distillation run (distill=self, run/distill.py)
adds `distill`: alpha, temperature, teacher ("self" or the saved run's folder), teacher_metrics
(the teacher's val/, test_last/, test_best/), teacher_best_step and teacher_s (seconds); its
`metrics` and speed figures are the student's (startup_s, from the process start, includes the teacher).
A run with further pre-training (pretrain=tapt|dapt|dapt_tapt) adds `pretrain` (pretrain/stage.py: the
stages' settings, corpus sizes, steps, held-out MLM loss before and after, the model they came
from and made, whether the cache had it, seconds).
An approach=setfit run (bertlab/setfit/) writes the same metric keys (one model: test_best/ = test_last/,
best_step = global_steps) and adds `setfit`: pairs, loss, head, sampling_strategy, num_iterations,
max_steps, embedding_loss_first/_last, stage1_s, stage2_s.
"""

import json
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from bertlab.core.atomic import write_text_atomic

RESULT_FILE = "result.json"

# result.json "settings": what defines a run, as the report groups it (key -> config path)
SETTINGS = {
    "task": "task.name",
    "model": "model.name",
    "optimizer": "optimizer.name",
    "bias_correction": "optimizer.bias_correction",
    "schedule": "schedule.name",
    "head": "head.name",
    "reinit": "reinit",
    "reinit_pooler": "reinit_pooler",
    "llrd": "llrd",
    "mixout": "mixout",
    "prior_wd": "prior_wd",
    "distill": "distill.name",
    "seed": "seed",
    "init_seed": "init_seed",  # = seed unless set apart (Dodge et al. 2020): head and re-initialised weights
    "order_seed": "order_seed",  # = seed unless set apart: batch order and dropout
    "lr": "optimizer.lr",
    "weight_decay": "optimizer.weight_decay",
    "batch_size": "data.batch_size",
    "compile": "trainer.compile",
    "max_epochs": "trainer.max_epochs",
    "max_steps": "trainer.max_steps",
    "n_train": "task.n_train",
    "n_val": "task.n_val",
    "k_shot": "task.k_shot",  # LM-BFF's K per class (data/k_shot.py); null = off
    "data_seed": "task.data_seed",
    "sampling": "task.sampling",
    "augment": "augment.name",
    "pretrain": "pretrain.name",  # further pre-training first: none, tapt, dapt, dapt_tapt
    "peft": "peft.name",  # parameter-efficient fine-tuning: none, lora, ia3, prefix, bitfit
    "head_lr_mult": "optimizer.head_lr_mult",  # the head's lr / optimizer.lr
    "approach": "approach.name",  # finetune (a classifier head), prompt, setfit (run/approach.py)
    "aux": "aux.name",  # an auxiliary objective: none, mlm, label_similarity (methods/auxiliary.py)
    "aux_weight": "aux.weight",
    "fusion": "features.fusion",  # side features: none, last_layer, embedding (heads/fusion.py)
}


def settings(cfg: DictConfig) -> dict:
    """The choices that define a run. Never raises: a key left at `???` (or an interpolation to
    one, like `model=hf`'s name) is recorded as None, and check_config then reports it."""

    def value(path: str):
        try:
            return OmegaConf.select(cfg, path, default=None, throw_on_missing=False)
        except InterpolationResolutionError:
            return None

    return {key: value(path) for key, path in SETTINGS.items()}


def _jsonable(value: Any) -> Any:
    # NaN/inf are not valid JSON; write them as null so every JSON reader can load the file.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_json_atomic(path: Path, record: dict) -> None:
    # serialised before anything is written: a record that cannot be written leaves no file behind
    write_text_atomic(path, json.dumps(_jsonable(record), indent=2, sort_keys=False))


def read_result(run_dir: Path) -> dict | None:
    """The run's record, or None when absent or unreadable."""
    try:
        return json.loads((Path(run_dir) / RESULT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None

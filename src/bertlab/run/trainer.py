"""The Lightning Trainer of a run, from `trainer.*`: precision, validation interval, limits.

Checkpointing is ours (callbacks/keep_best.py keeps the best weights in memory, callbacks/
resume.py the resume checkpoint), so Lightning's own is off.
"""

import math
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from bertlab.callbacks.resume import RunFolderCheckpointIO
from bertlab.run.limits import capped_trainer_kwargs, lightning_trainer


def precision(configured: str) -> str:
    """`auto`: bf16 mixed precision on GPUs that support it, full precision elsewhere."""
    if configured != "auto":
        return configured
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def accelerator(configured: str) -> str:
    """What the Trainer runs on: `auto` is a GPU when one is visible (result.json `devices`, the
    console's device line)."""
    if configured != "auto":
        return str(configured)
    return "cuda" if torch.cuda.is_available() else "cpu"


def validation_interval(n_train: int, cfg: DictConfig) -> int:
    """Training batches between validations: total // num_evals, so validation runs `num_evals`
    times when that divides the run evenly, and a few times more otherwise (never fewer: e.g. 13
    in the default 39-batch run; `validations` in result.json). Lightning validates at a fixed
    interval, and no fixed interval gives exactly 10 validations in 39 batches."""
    batches_per_epoch = math.ceil(n_train / cfg.data.batch_size)
    if cfg.trainer.max_steps not in (None, -1):  # a step count of the run's own: limits keep it
        total = cfg.trainer.max_steps * cfg.trainer.accumulate_grad_batches
    else:
        total = cfg.trainer.max_epochs * batches_per_epoch
        # a run by epochs is capped by `limits` (debug=fast) and ends earlier: validate within what runs
        capped = capped_trainer_kwargs(cfg.get("limits"), max_steps=-1)["max_steps"]
        if capped != -1:
            total = min(total, capped * cfg.trainer.accumulate_grad_batches)
    return max(1, total // cfg.trainer.num_evals)


def compiled_graphs() -> int:
    """Graphs torch.compile has built in this process (0 when it never ran); recompiles add to it."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def build_trainer(cfg: DictConfig, run_dir: Path, n_train: int, loggers, callbacks) -> L.Trainer:
    t = cfg.trainer
    max_steps = t.max_steps if t.max_steps is not None else -1
    return lightning_trainer(
        cfg.get("limits"),  # debug=fast's caps (run/limits.py)
        accelerator=t.accelerator,
        devices=t.devices,
        precision=precision(t.precision),
        # Lightning stops at whichever limit comes first; a step budget must not be cut by max_epochs
        max_epochs=-1 if max_steps > 0 else t.max_epochs,
        max_steps=max_steps,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        # count validation intervals in batches across epochs, not per epoch
        val_check_interval=validation_interval(n_train, cfg),
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        limit_val_batches=t.limit_val_batches,
        limit_test_batches=t.limit_test_batches,
        deterministic=t.deterministic,
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=t.enable_progress_bar,
        enable_checkpointing=False,
        plugins=[RunFolderCheckpointIO()],  # the resume checkpoint, written in the run folder (not /tmp)
        enable_model_summary=False,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(run_dir),
    )

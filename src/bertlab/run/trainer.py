"""The Lightning Trainer of a run, from `trainer.*`: precision, validation interval, limits.

Checkpointing is ours (callbacks/keep_best.py keeps the best weights in memory, callbacks/
resume.py the resume checkpoint), so Lightning's own is off.
"""

import math
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from bertlab.callbacks.resume import RunFolderCheckpointIO
from bertlab.core.limits import capped_trainer_kwargs, lightning_trainer
from bertlab.run.checks import trainer_arguments


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
    """The run's Trainer: every trainer.* key's argument as its row of TRAINER_RULES says
    (run/checks.py), and the settings that are not keys (ours, fixed)."""
    return lightning_trainer(
        cfg.get("limits"),  # debug=fast's caps (core/limits.py)
        **trainer_arguments(cfg.trainer),
        # count validation intervals in batches across epochs, not per epoch (from trainer.num_evals)
        val_check_interval=validation_interval(n_train, cfg),
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        plugins=[RunFolderCheckpointIO()],  # the resume checkpoint, written in the run folder (not /tmp)
        enable_model_summary=False,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(run_dir),
    )

"""Entry point: one fine-tuning run per Hydra job, always ending in a `result.json`.

config -> task splits -> model (+ re-init) -> LightningModule -> Trainer.fit -> test the last
and the best weights -> result record. In a multirun a failed job is recorded and the sweep
goes on; a single run exits non-zero with one message.
"""

import logging
import math
import os
import sys
import time
import traceback
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from bertlab.callbacks.diagnostics import TrainingDiagnostics
from bertlab.callbacks.keep_best import KeepBestWeights
from bertlab.callbacks.resume import (
    ResumeCheckpoint,
    merge_metrics,
    remove_resume_state,
    resume_checkpoint,
    set_aside_metrics,
)
from bertlab.callbacks.throughput import TrainThroughput
from bertlab.config.checks import check_config
from bertlab.core.errors import BertlabError
from bertlab.core.paths import CONF_DIR
from bertlab.data.datamodule import FewSampleDataModule
from bertlab.data.readers import read_task
from bertlab.data.sampling import make_splits
from bertlab.loggers.build import build_loggers, finish_wandb, short_override, wandb_tags
from bertlab.loggers.console import console_callbacks, print_config, quiet_libraries
from bertlab.methods.mixout import apply_mixout
from bertlab.methods.prior_wd import PriorWeightDecay
from bertlab.methods.reinit import reinit_top_layers
from bertlab.model.load import check_before_weights, load_config, load_model, load_tokenizer
from bertlab.run.folder import storage_error, storage_message
from bertlab.run.record import RESULT_FILE, write_json_atomic
from bertlab.sweep.folders import finished_result, foreign_result
from bertlab.training.finetuner import DivergedError, FineTuner
from bertlab.training.metrics import baseline_scores, check_metrics, selection_metric

log = logging.getLogger("bertlab")


# result.json "settings": what defines a run, as the report groups it (key -> config path)
SETTINGS = {
    "task": "task.name",
    "model": "model.name",
    "optimizer": "optimizer.name",
    "bias_correction": "optimizer.bias_correction",
    "schedule": "schedule.name",
    "reinit": "reinit",
    "reinit_pooler": "reinit_pooler",
    "llrd": "llrd",
    "mixout": "mixout",
    "prior_wd": "prior_wd",
    "seed": "seed",
    "lr": "optimizer.lr",
    "weight_decay": "optimizer.weight_decay",
    "batch_size": "data.batch_size",
    "compile": "trainer.compile",
    "max_epochs": "trainer.max_epochs",
    "max_steps": "trainer.max_steps",
    "n_train": "task.n_train",
    "n_val": "task.n_val",
    "data_seed": "task.data_seed",
    "sampling": "task.sampling",
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


def precision(configured: str) -> str:
    """`auto`: bf16 mixed precision on GPUs that support it, full precision elsewhere."""
    if configured != "auto":
        return configured
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def validation_interval(n_train: int, cfg: DictConfig) -> int:
    """Training batches between validations: total // num_evals, so validation runs `num_evals`
    times when that divides the run evenly, and a few times more otherwise (never fewer: e.g. 13
    in the default 39-batch run; `validations` in result.json). Lightning validates at a fixed
    interval, and no fixed interval gives exactly 10 validations in 39 batches."""
    batches_per_epoch = math.ceil(n_train / cfg.data.batch_size)
    if cfg.trainer.max_steps not in (None, -1):
        total = cfg.trainer.max_steps * cfg.trainer.accumulate_grad_batches
    else:
        total = cfg.trainer.max_epochs * batches_per_epoch
    return max(1, total // cfg.trainer.num_evals)


def compiled_graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def build_trainer(cfg: DictConfig, run_dir: Path, n_train: int, loggers, callbacks) -> L.Trainer:
    t = cfg.trainer
    max_steps = t.max_steps if t.max_steps is not None else -1
    return L.Trainer(
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
        enable_model_summary=False,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(run_dir),
    )


def fit_and_test(
    cfg: DictConfig,
    run_dir: Path,
    run_name: str,
    group: str | None,
    tags: list[str],
    overrides: list[str] | None = None,
) -> dict:
    check_config(cfg)
    task = cfg.task
    check_metrics(list(task.metrics), task.main_metric, task.problem)
    select = selection_metric(list(task.metrics), task.main_metric, task.get("select_metric"))
    regression = task.problem == "regression"
    # The data sample depends on task.data_seed only, never on the training seed.
    # (read_task fills task.labels when a csv task leaves them to be inferred.)
    splits = make_splits(read_task(task), task, task.data_seed)
    num_labels = 1 if regression else len(task.labels)
    model_config = load_config(cfg.model.name_or_path, num_labels, task.problem, cfg.model.dropout)
    tokenizer = load_tokenizer(cfg.model.name_or_path)
    pair = splits["train"][0].text_b is not None
    check_before_weights(cfg.model.name_or_path, model_config, tokenizer, task.max_length, pair, cfg.reinit)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    tokenizer, model = load_model(cfg.model.name_or_path, model_config, tokenizer=tokenizer)
    reinit_top_layers(model, cfg.reinit, reinit_pooler=cfg.reinit > 0 or cfg.reinit_pooler)
    apply_mixout(model, cfg.mixout)  # after re-init: Linears mix toward the re-initialised weights
    compile_backend = cfg.trainer.get("compile", False)
    if compile_backend:
        # in place (nn.Module.compile): parameter names, best-weight copies and checkpoints are
        # unchanged; dynamic shapes, since every batch is padded to its own length
        model.compile(dynamic=True, backend="inductor" if compile_backend is True else str(compile_backend))

    datamodule = FewSampleDataModule(
        splits,
        tokenizer,
        task.max_length,
        regression,
        cfg.data.batch_size,
        cfg.data.eval_batch_size,
        cfg.data.num_workers,
        seed=cfg.seed,
        group_by_length=cfg.data.get("group_by_length", False),
        token_cache_dir=cfg.data.get("token_cache"),
    )
    module = FineTuner(model, cfg.optimizer, cfg.schedule, list(task.metrics), task.problem, llrd=cfg.llrd)
    best = KeepBestWeights(monitor=f"val/{select}")
    throughput = TrainThroughput()
    ckpt_path = resume_checkpoint(run_dir, overrides) if cfg.get("resume", True) else None
    if ckpt_path is not None:  # a previous attempt was killed: continue it (resume.py)
        print(f"resuming from {ckpt_path}")
        set_aside_metrics(run_dir, ckpt_path)
    loggers = build_loggers(cfg, run_dir, run_name, group, tags)
    # starting weights (after re-init) are taken here, before fit (and before a resume loads any)
    diagnostics = TrainingDiagnostics(model, every_n_steps=cfg.trainer.get("diagnostics_every_n_steps", 25))
    callbacks = [best, throughput, diagnostics, *console_callbacks(cfg.trainer, best)]
    if cfg.prior_wd > 0:
        callbacks.append(PriorWeightDecay(model, cfg.prior_wd))
    if loggers:  # lr of each parameter group, named by param_groups (`lr/layer_3/decay`, ...)
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    if cfg.get("resume", True):  # kill and resume (resume.py)
        callbacks.append(ResumeCheckpoint(run_dir, every_s=cfg.get("resume_every_s", 60), overrides=overrides))
    trainer = build_trainer(cfg, run_dir, len(splits["train"]), loggers, callbacks)

    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = dict(best.best_metrics)
    module.test_prefix = "test_last"
    trainer.test(module, datamodule=datamodule, verbose=False)
    metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test_last/")})
    if best.restore(module):
        module.test_prefix = "test_best"
        trainer.test(module, datamodule=datamodule, verbose=False)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test_best/")})
    merge_metrics(run_dir)  # a resumed run: put back the rows logged before its checkpoint
    if cfg.save_weights:
        # the best weights (or the last ones when validation never ran), loadable with from_pretrained
        module.model.save_pretrained(run_dir / "model")
        tokenizer.save_pretrained(run_dir / "model")

    return {
        "metrics": metrics,
        "select_metric": select,  # the validation metric that picked the best weights
        "best_step": best.best_step,
        "validations": best.validations,
        "baseline": baseline_scores(
            list(task.metrics),
            num_labels,
            task.problem,
            [e.label for e in splits["train"]],
            [e.label for e in splits["test"]],
        ),
        "split_sizes": {name: len(examples) for name, examples in splits.items()},
        "train_samples_per_s": throughput.samples_per_s,
        "padding_efficiency": throughput.padding_efficiency,  # real / processed training tokens
        "startup_s": throughput.startup_s,  # process start (the command) -> first training batch
        "model_tflops_per_s": throughput.model_tflops_per_s,
        "mfu": throughput.mfu,  # model FLOPs utilisation (GPUs Lightning knows; None on CPU)
        "first_step_at": throughput.first_step_at,  # unix time (scripts/bench.py)
        "token_cache_hits": datamodule.cache_hits,
        "global_steps": trainer.global_step,
        # graphs torch.compile built (trainer.compile); 0 when off. Recompiles show up here.
        "compiled_graphs": compiled_graphs(),
        "diagnostics": diagnostics.summary(),
        # what training actually ran in: float32 master weights, and the Trainer's precision
        "param_dtype": str(next(module.model.parameters()).dtype).removeprefix("torch."),
        "precision": str(trainer.precision),
        "head": module.model.head_origin,  # new, or kept from the checkpoint (models.head_origin)
    }


def job_identity(cfg: DictConfig) -> tuple[list[str], str, str | None, bool]:
    """Overrides, run name, W&B group and whether this job belongs to a multirun."""
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    run_name = ",".join(short_override(o) for o in overrides if not o.startswith("hydra")) or "defaults"
    group = None
    if multirun:
        sweep_dir = Path(hydra_cfg.sweep.dir)
        group = f"{sweep_dir.parent.name}/{sweep_dir.name}"
    return overrides, run_name, group, multirun


def run_job(cfg: DictConfig) -> float | None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    overrides, run_name, group, multirun = job_identity(cfg)
    if multirun and foreign_result(run_dir, overrides) is not None:
        # a sweeper whose jobs SweepFolderGuard could not list in advance: keep the other job's result
        print(
            f"error: {run_dir} holds another job's result (sweep.py); it is kept and this job is not run",
            file=sys.stderr,
        )
        return None
    done = finished_result(run_dir, overrides) if multirun else None
    if done is not None:  # a re-run of the same sweep: this job already succeeded
        print(f"skipped (already ok): {run_dir}")
        return done["metrics"].get(f"val/{cfg.task.main_metric}")
    chosen = [o for o in overrides if not o.startswith("hydra")]  # the user's choices, not Hydra's own
    swept = [o.split("=", 1)[0].lstrip("+~") for o in chosen if "=" in o]
    tags = wandb_tags(chosen, list(cfg.tags))
    record: dict = {
        "status": "failed",
        "error": None,
        "task": cfg.task.name,
        "main_metric": cfg.task.main_metric,
        "settings": settings(cfg),
        "swept": swept,
        "overrides": overrides,
        "metrics": {},
        "run_dir": str(run_dir),
        "devices": {
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
            # what the Trainer runs on: `auto` is a GPU when one is visible
            "accelerator": ("cuda" if torch.cuda.is_available() else "cpu")
            if cfg.trainer.accelerator == "auto"
            else str(cfg.trainer.accelerator),
        },
        "pid": os.getpid(),  # a fresh process per job on the gpus launcher (tested)
    }
    print_config(cfg)
    keep_resume = False  # a full disk: the last checkpoint is kept, to continue from once there is space
    start = time.time()
    record["started_at"] = start  # unix time; with duration_s, when the job ran
    try:
        record.update(fit_and_test(cfg, run_dir, run_name, group, tags, overrides))
        record["status"] = "ok"
    except DivergedError as err:
        record.update(status="diverged", error=str(err), diverged_at_step=err.step)
    except BertlabError as err:
        record["error"] = str(err)
    except SIGTERMException:  # preempted: ResumeCheckpoint has saved; the same command resumes
        record.update(
            status="interrupted", error="stopped by SIGTERM; the same command (same run directory) resumes it"
        )
    except (KeyboardInterrupt, SystemExit) as err:
        # Ctrl-C (Lightning turns it into SystemExit) or submitit's requeue on USR2 (sys.exit):
        # keep the last resume checkpoint, so the same command, or the requeued job, continues it
        record.update(
            status="interrupted",
            error=f"stopped ({err.__class__.__name__}); the same command "
            "(same run directory) resumes from the last checkpoint",
        )
        raise
    except Exception as err:  # a bug or an environment failure (e.g. out of memory): keep the traceback
        full = storage_error(err)
        if full is not None:  # the run folder filled up or turned read-only: the user's to fix, one message
            record["error"], keep_resume = storage_message(full, run_dir, multirun), True
        else:
            record["error"] = f"{err.__class__.__name__}: {err}"
            try:
                (run_dir / "error.log").write_text(traceback.format_exc())
            except OSError:  # the traceback is re-raised (single run) or summarised (sweep) anyway
                pass
            if not multirun:
                raise
    finally:
        record["duration_s"] = round(time.time() - start, 3)
        try:
            write_json_atomic(run_dir / RESULT_FILE, record)
        except OSError as err:
            # Never raised from here: in a sweep, Hydra would re-raise it after the jobs and skip the
            # summary. The job is reported failed (its metrics were never recorded).
            full = storage_error(err)
            if not keep_resume:  # else the error already says the folder cannot be written
                unwritten = (
                    storage_message(full, run_dir, multirun) if full else f"{run_dir / RESULT_FILE} not written: {err}"
                )
                ended = f" (the run itself ended {record['status']}: {record['error']})" if record["error"] else ""
                record["error"] = unwritten + ended
            if record["status"] == "ok":
                record["status"] = "failed"
            keep_resume = keep_resume or full is not None
        finish_wandb(exit_code=0 if record["status"] == "ok" else 1)
        if record["status"] != "interrupted" and not keep_resume:  # a finished run keeps no checkpoint
            remove_resume_state(run_dir)

    print(f"run directory: {run_dir}")
    if record["status"] != "ok":
        print(f"error ({record['status']}): {record['error']}", file=sys.stderr)
        if record["status"] == "interrupted":
            sys.exit(143)  # 128 + SIGTERM, also in a multirun: the whole sweep is being preempted
        if not multirun:
            sys.exit(1)
        return None
    for key, value in sorted(record["metrics"].items()):
        print(f"  {key:<28} {value:.4f}")
    return record["metrics"].get(f"val/{cfg.task.main_metric}")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    quiet_libraries()
    return run_job(cfg)


if __name__ == "__main__":  # `python -m bertlab.run.job`: the same entry as `python train.py`
    from bertlab.run.entry import main

    main()

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
from omegaconf import DictConfig, OmegaConf

from bertlab.callbacks import KeepBestWeights
from bertlab.checks import check_config
from bertlab.datamodule import FewSampleDataModule
from bertlab.errors import BertlabError
from bertlab.loggers import build_loggers, finish_wandb
from bertlab.metrics import baseline_scores, check_metrics
from bertlab.models import load_config, load_model
from bertlab.module import DivergedError, FineTuner
from bertlab.readers import read_task
from bertlab.reinit import check_reinit, reinit_top_layers
from bertlab.results import RESULT_FILE, write_json_atomic
from bertlab.sampling import make_splits
from bertlab.throughput import TrainThroughput

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
log = logging.getLogger("bertlab")


def settings(cfg: DictConfig) -> dict:
    """The choices that define a run, as the report groups them."""
    return {
        "task": cfg.task.name,
        "model": cfg.model.name,
        "optimizer": cfg.optimizer.name,
        "bias_correction": cfg.optimizer.bias_correction,
        "schedule": cfg.schedule.name,
        "reinit": cfg.reinit,
        "reinit_pooler": cfg.reinit_pooler,
        "llrd": cfg.llrd,
        "seed": cfg.seed,
        "lr": cfg.optimizer.lr,
        "weight_decay": cfg.optimizer.weight_decay,
        "batch_size": cfg.data.batch_size,
        "max_epochs": cfg.trainer.max_epochs,
        "max_steps": cfg.trainer.max_steps,
        "n_train": cfg.task.n_train,
        "n_val": cfg.task.n_val,
        "data_seed": cfg.task.data_seed,
    }


def precision(configured: str) -> str:
    """`auto`: bf16 mixed precision on GPUs that support it, full precision elsewhere."""
    if configured != "auto":
        return configured
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def validation_interval(n_train: int, cfg: DictConfig) -> int:
    """Training batches between validations, so that validation runs `num_evals` times."""
    batches_per_epoch = math.ceil(n_train / cfg.data.batch_size)
    if cfg.trainer.max_steps not in (None, -1):
        total = cfg.trainer.max_steps * cfg.trainer.accumulate_grad_batches
    else:
        total = cfg.trainer.max_epochs * batches_per_epoch
    return max(1, total // cfg.trainer.num_evals)


def build_trainer(cfg: DictConfig, run_dir: Path, n_train: int, loggers, callbacks) -> L.Trainer:
    t = cfg.trainer
    return L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        precision=precision(t.precision),
        max_epochs=t.max_epochs,
        max_steps=t.max_steps if t.max_steps is not None else -1,
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


def fit_and_test(cfg: DictConfig, run_dir: Path, run_name: str, group: str | None, tags: list[str]) -> dict:
    check_config(cfg)
    task = cfg.task
    check_metrics(list(task.metrics), task.main_metric, task.problem)
    regression = task.problem == "regression"
    # The data sample depends on task.data_seed only, never on the training seed.
    # (read_task fills task.labels when a csv task leaves them to be inferred.)
    splits = make_splits(read_task(task), task, task.data_seed)
    num_labels = 1 if regression else len(task.labels)
    model_config = load_config(cfg.model.name_or_path, num_labels, task.problem, cfg.model.dropout)
    check_reinit(model_config.num_hidden_layers, cfg.reinit)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    tokenizer, model = load_model(cfg.model.name_or_path, model_config)
    reinit_top_layers(model, cfg.reinit, reinit_pooler=cfg.reinit > 0 or cfg.reinit_pooler)

    datamodule = FewSampleDataModule(
        splits, tokenizer, task.max_length, regression,
        cfg.data.batch_size, cfg.data.eval_batch_size, cfg.data.num_workers,
    )
    module = FineTuner(model, cfg.optimizer, cfg.schedule, list(task.metrics), task.problem, llrd=cfg.llrd)
    best = KeepBestWeights(monitor=f"val/{task.main_metric}")
    throughput = TrainThroughput()
    loggers = build_loggers(cfg, run_dir, run_name, group, tags)
    trainer = build_trainer(cfg, run_dir, len(splits["train"]), loggers, [best, throughput])

    trainer.fit(module, datamodule=datamodule)
    metrics = dict(best.best_metrics)
    module.test_prefix = "test_last"
    trainer.test(module, datamodule=datamodule, verbose=False)
    metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test_last/")})
    if best.restore(module):
        module.test_prefix = "test_best"
        trainer.test(module, datamodule=datamodule, verbose=False)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test_best/")})
    if cfg.save_weights:
        # the best weights (or the last ones when validation never ran), loadable with from_pretrained
        module.model.save_pretrained(run_dir / "model")
        tokenizer.save_pretrained(run_dir / "model")

    return {
        "metrics": metrics,
        "best_step": best.best_step,
        "baseline": baseline_scores(
            list(task.metrics), num_labels, task.problem,
            [e.label for e in splits["train"]], [e.label for e in splits["test"]],
        ),
        "split_sizes": {name: len(examples) for name, examples in splits.items()},
        "train_samples_per_s": throughput.samples_per_s,
        "global_steps": trainer.global_step,
    }


def job_identity(cfg: DictConfig) -> tuple[list[str], str, str | None, bool]:
    """Overrides, run name, W&B group and whether this job belongs to a multirun."""
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    run_name = ",".join(o for o in overrides if not o.startswith("hydra")) or "defaults"
    group = None
    if multirun:
        sweep_dir = Path(hydra_cfg.sweep.dir)
        group = f"{sweep_dir.parent.name}/{sweep_dir.name}"
    return overrides, run_name, group, multirun


def run_job(cfg: DictConfig) -> float | None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    overrides, run_name, group, multirun = job_identity(cfg)
    swept = [o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o and not o.startswith("hydra")]
    tags = [o for o in overrides if not o.startswith("hydra")] + list(cfg.tags)
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
            "accelerator": "cuda" if torch.cuda.is_available() else "cpu",
        },
    }
    start = time.time()
    try:
        record.update(fit_and_test(cfg, run_dir, run_name, group, tags))
        record["status"] = "ok"
    except DivergedError as err:
        record.update(status="diverged", error=str(err), diverged_at_step=err.step)
    except BertlabError as err:
        record["error"] = str(err)
    except Exception as err:  # a bug or an environment failure (e.g. out of memory): keep the traceback
        record["error"] = f"{err.__class__.__name__}: {err}"
        (run_dir / "error.log").write_text(traceback.format_exc())
        if not multirun:
            raise
    finally:
        record["duration_s"] = round(time.time() - start, 3)
        write_json_atomic(run_dir / RESULT_FILE, record)
        finish_wandb(exit_code=0 if record["status"] == "ok" else 1)

    print(f"run directory: {run_dir}")
    if record["status"] != "ok":
        print(f"error ({record['status']}): {record['error']}", file=sys.stderr)
        if not multirun:
            sys.exit(1)
        return None
    for key, value in sorted(record["metrics"].items()):
        print(f"  {key:<28} {value:.4f}")
    return record["metrics"].get(f"val/{cfg.task.main_metric}")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    return run_job(cfg)


if __name__ == "__main__":
    main()

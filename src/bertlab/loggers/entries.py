"""The factories conf/logger/*.yaml name: each builds one of bertlab's loggers from the run's things
it asks for by argument name (loggers/build.py `build_loggers` gives them: loggers/choice.py CONTEXT) and its entry's
keys (logger.wandb.project, logger.mlflow.tracking_uri, ...). A fork's logger needs none of this:
`+logger.aim._target_=aim.pytorch_lightning.AimLogger` is built with its own keys (core/entries.py).
"""

from pathlib import Path

from omegaconf import DictConfig


def csv(run_dir: Path, keep_rows: int):
    """metrics.csv in the run folder (the report's curves); build_loggers adds it beside any logger anyway."""
    from bertlab.loggers.run_csv import RunFolderCSVLogger

    return RunFolderCSVLogger(str(run_dir), keep_rows)


def wandb(
    cfg: DictConfig,
    run_dir: Path,
    run_name: str,
    group: str | None,
    tags: list[str],
    project: str = "bertlab",
    entity: str | None = None,
    mode: str | None = None,
):
    """Weights & Biases: online with an API key and an answering server, else offline (build.py)."""
    from bertlab.loggers.build import wandb_logger

    return wandb_logger(cfg, run_dir, run_name, group, tags, project=project, entity=entity, mode=mode)


def tensorboard(cfg: DictConfig, run_dir: Path, run_name: str, group: str | None, tags: list[str], resumed: bool):
    from bertlab.loggers.tensorboard_dir import tensorboard_logger

    return tensorboard_logger(cfg, run_dir, run_name, group, tags, resumed)


def mlflow(
    cfg: DictConfig,
    run_dir: Path,
    run_name: str,
    group: str | None,
    tags: list[str],
    resumed: bool,
    experiment: str = "bertlab",
    tracking_uri: str | None = None,
):
    """MLflow in `experiment` at `tracking_uri` (null: a file store beside the run, mlflow_store.py)."""
    from bertlab.loggers.mlflow_store import mlflow_logger

    return mlflow_logger(cfg, run_dir, run_name, group, tags, resumed, experiment, tracking_uri)

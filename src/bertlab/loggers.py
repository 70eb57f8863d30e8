"""Experiment loggers: Weights & Biases (default), a local CSV of every logged metric, or none.

`metrics.csv` in the run directory is what the sweep report reads for its curves, so it is
written whenever a logger is on. W&B never blocks a run: with no API key and no WANDB_MODE it
logs offline and says how to sync later.
"""

import netrc
import os
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from bertlab.errors import ConfigError

LOGGERS = ("wandb", "csv", "none")
WANDB_TAG_MAX = 64  # W&B refuses longer tags (the run would fail at start)


def short_override(override: str) -> str:
    """`key=value` with a path value cut to its last part: `task.data_dir=/data/glue/RTE` ->
    `task.data_dir=RTE`. Run names and tags stay readable, and a W&B tag stays within 64 characters."""
    key, sep, value = override.partition("=")
    if sep and "/" in value.rstrip("/"):
        value = value.rstrip("/").rsplit("/", 1)[-1]
    return f"{key}{sep}{value}"


def wandb_tags(overrides: list[str], extra: list[str]) -> list[str]:
    """W&B tags: the run's overrides (shortened) and the config's `tags`, each at most 64 characters."""
    tags = [short_override(o) for o in overrides] + [str(t) for t in extra]
    return list(dict.fromkeys(t[:WANDB_TAG_MAX] for t in tags if t))


def wandb_api_key_configured() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:  # `wandb login` stores the key in ~/.netrc
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode(configured: str | None) -> str:
    """online / offline / disabled: the config wins, then WANDB_MODE, then the key's presence."""
    mode = configured or os.environ.get("WANDB_MODE")
    if mode:
        return mode
    if wandb_api_key_configured():
        return "online"
    print("W&B: no API key configured, logging offline; sync later with `wandb sync <run_dir>/wandb/offline-run-*` "
          "(or `wandb sync --sync-all` in that folder).")
    return "offline"


def build_loggers(cfg: DictConfig, run_dir: Path, run_name: str, group: str | None, tags: list[str]) -> list[Logger]:
    name = cfg.logger.name
    if name not in LOGGERS:
        raise ConfigError(f"logger={name} is unknown; valid: {', '.join(LOGGERS)}.")
    if name == "none":
        return []
    # name="" and version="" put metrics.csv directly in the run directory.
    loggers: list[Logger] = [CSVLogger(save_dir=str(run_dir), name="", version="")]
    if name == "wandb":
        loggers.append(
            WandbLogger(
                project=cfg.logger.project,
                entity=cfg.logger.entity,
                name=run_name,
                group=group,
                job_type=cfg.task.name,
                tags=tags,
                save_dir=str(run_dir),
                mode=wandb_mode(cfg.logger.mode),
                config=OmegaConf.to_container(cfg, resolve=True),
            )
        )
    return loggers


def finish_wandb(exit_code: int = 0) -> None:
    """Close the W&B run, so the next job of a multirun (same process) opens a fresh one."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=exit_code)

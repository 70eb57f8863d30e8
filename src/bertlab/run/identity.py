"""Who a job is: its overrides, and the run name, W&B group and tags made from them.

The run name and the tags are the user's own overrides (Hydra's are left out), shortened so a
path does not drown the rest: `task.data_dir=/data/glue/RTE` shows as `task.data_dir=RTE`.
A multirun's jobs share one W&B group: the sweep folder, `<date>/<time>`.
"""

from pathlib import Path
from typing import NamedTuple

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

WANDB_TAG_MAX = 64  # W&B refuses longer tags (the run would fail at start)


class JobIdentity(NamedTuple):
    overrides: list[str]  # as Hydra gives them: the resume checkpoint's owner, a sweep folder's job
    run_name: str
    group: str | None  # None outside a multirun
    tags: list[str]
    swept: list[str]  # the keys the user's overrides set (result.json `swept`)
    multirun: bool


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


def job_identity(cfg: DictConfig) -> JobIdentity:
    """The identity of the Hydra job now running (HydraConfig must be set)."""
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    chosen = [o for o in overrides if not o.startswith("hydra")]  # the user's choices, not Hydra's own
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    group = None
    if multirun:
        sweep_dir = Path(hydra_cfg.sweep.dir)
        group = f"{sweep_dir.parent.name}/{sweep_dir.name}"
    return JobIdentity(
        overrides=overrides,
        run_name=",".join(short_override(o) for o in chosen) or "defaults",
        group=group,
        tags=wandb_tags(chosen, list(cfg.tags)),
        swept=[o.split("=", 1)[0].lstrip("+~") for o in chosen if "=" in o],
        multirun=multirun,
    )

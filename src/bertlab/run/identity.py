"""Who a job is: its overrides, and the run name, W&B group and tags made from them.

The run name and the tags are the user's own overrides (Hydra's are left out), shortened so a
path does not drown the rest: `task.data_dir=/data/glue/RTE` shows as `task.data_dir=RTE`.
A multirun's jobs share one W&B group: the sweep folder, `<date>/<time>`; each job is named
after its swept choices only (`optimizer=bertadam,seed=3`), the settings the sweep fixed being
the same for all (they stay in the tags and the config).
"""

import os
from pathlib import Path
from typing import Any, NamedTuple

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

# the keys a multirun sweeps, comma-separated: set by SweptKeys before the jobs start, read by each
# job. An environment variable, because the launchers may run jobs in other processes (joblib,
# submitit, Ray), which inherit the environment but not Python state; a job's own config holds
# only its own values, not the sweep's.
SWEPT_KEYS_VARIABLE = "BERTLAB_SWEPT_KEYS"

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


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def sweep_group(sweep_dir: Path) -> str:
    """The W&B group of a sweep: its folder, `<date>/<time>` (the report logs to it too)."""
    sweep_dir = Path(sweep_dir)
    return f"{sweep_dir.parent.name}/{sweep_dir.name}"


def swept_keys(config: DictConfig) -> list[str]:
    """The keys a multirun varies: its sweep overrides (`seed=0,1`, `reinit=range(0,3)`) and the
    sweeper's own parameters (`hydra.sweeper.params`: a search's dimensions, a preset's grid)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    arguments = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
    try:
        parsed = OverridesParser.create().parse_overrides(arguments)
    except Exception:  # the sweeper reports a bad override itself; the names fall back to every choice
        return []
    keys = [o.key_or_group for o in parsed if o.is_sweep_override()]
    keys += [str(k) for k in (config.hydra.sweeper.get("params") or {})]
    return list(dict.fromkeys(keys))


class SweptKeys(Callback):
    """Before a multirun's jobs start: note the keys it sweeps, for the jobs' names (job_identity)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ[SWEPT_KEYS_VARIABLE] = ",".join(swept_keys(config))


def job_identity(cfg: DictConfig) -> JobIdentity:
    """The identity of the Hydra job now running (HydraConfig must be set)."""
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    chosen = [o for o in overrides if not o.startswith("hydra")]  # the user's choices, not Hydra's own
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    group, named = None, chosen
    if multirun:
        group = sweep_group(Path(hydra_cfg.sweep.dir))
        swept = os.environ.get(SWEPT_KEYS_VARIABLE)
        if swept:  # unset: a launcher that did not pass the environment on; every choice names the job
            named = [o for o in chosen if override_key(o) in swept.split(",")] or chosen
    return JobIdentity(
        overrides=overrides,
        run_name=",".join(short_override(o) for o in named) or "defaults",
        group=group,
        tags=wandb_tags(chosen, list(cfg.tags)),
        swept=[override_key(o) for o in chosen if "=" in o],
        multirun=multirun,
    )

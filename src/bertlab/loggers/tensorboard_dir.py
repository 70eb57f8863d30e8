"""TensorBoard: event files in `<run folder>/tensorboard/<run name>/`.

TensorBoard names a run by its folder under `--logdir`: `tensorboard --logdir <sweep folder>` shows
each job as `<job number>/tensorboard/<run name>` (the sweep folder is W&B's group), and the tags
and the resolved config are the run's hparams (the HPARAMS tab filters and compares on them).
"""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bertlab.core.lines import say

TENSORBOARD_DIR = "tensorboard"
NAME_MAX = 200  # a folder name: most filesystems stop at 255 bytes


def run_folder_name(run_name: str) -> str:
    """The run name as one folder name: no path separator, at most NAME_MAX characters."""
    return run_name.replace("/", "_").replace("\\", "_")[:NAME_MAX] or "defaults"


def tensorboard_logger(
    cfg: DictConfig, run_dir: Path, run_name: str, group: str | None, tags: list[str], resumed: bool = False
):
    """`resumed`: continue the event files of the attempt before; otherwise (a fresh start in the
    folder: the attempt before left no checkpoint) they are removed, as metrics.csv is started
    afresh: TensorBoard would draw that attempt's first steps beside this run's."""
    from lightning.pytorch.loggers import TensorBoardLogger

    # default_hp_metric off: Lightning would log a placeholder `hp_metric` of -1 beside our metrics
    logger = TensorBoardLogger(
        save_dir=str(run_dir), name=TENSORBOARD_DIR, version=run_folder_name(run_name), default_hp_metric=False
    )
    if not resumed:
        earlier = sorted(Path(logger.log_dir).glob("events.out.tfevents.*"))
        for path in earlier:
            path.unlink(missing_ok=True)
        if earlier:
            say(f"tensorboard: {len(earlier)} event file(s) of the attempt before (nothing to resume) removed")
    identity = {"run_name": run_name, "group": group or "", "tags": ",".join(tags)}
    logger.log_hyperparams({**identity, **OmegaConf.to_container(cfg, resolve=True)})
    return logger

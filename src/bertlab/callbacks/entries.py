"""The factories conf/callbacks/default.yaml names where a callback's class cannot be named itself:
each builds one of the paper's callbacks from the run's things it asks for by argument name
(run/fit.py `build_callbacks` gives them: CONTEXT), or returns None when the callback is off for this
run (no logger, resume=false). The others are named directly: TrainThroughput, TrainingDiagnostics,
loggers/console.py `console_callbacks`, methods/prior_wd.py `prior_wd_callback`.
"""

from pathlib import Path

from omegaconf import DictConfig

from bertlab.core.errors import ConfigError

# What a `_partial_: true` entry of `callbacks` may ask for by argument name, given at build time
# (after re-init, before fit and before a resume loads any weights).
CONTEXT = {
    "cfg": "the run's whole config",
    "model": "the model to train, after re-init",
    "run_dir": "the run folder",
    "overrides": "the command line's overrides",
    "select": "the validation metric that picks the best weights, e.g. accuracy",
    "loggers": "the run's Lightning loggers",
    "best": "the keep-best callback",
}


# the entries build_callbacks needs by name: keep_best (result.json's metrics and best_step) cannot
# be dropped; resume is built last whatever the order given (see conf/callbacks/default.yaml)
KEEP_BEST, RESUME = "keep_best", "resume"
CALLBACK_WHAT = "a Lightning callback class, or a function returning callbacks"


def callback_entries(cfg: DictConfig) -> dict:
    """The `callbacks` entries that are on, in build order: as given, `resume` moved last (a fork's
    entries run after ours and before it: its saves hold what they recorded). Raises ConfigError
    when keep_best is dropped."""
    from bertlab.core.entries import entries

    on = entries(cfg.get("callbacks"))
    if KEEP_BEST not in on:
        raise ConfigError(
            f"callbacks.{KEEP_BEST} cannot be dropped: its best weights and validation metrics are result.json's "
            f"(metrics, best_step); restore it (remove ~callbacks.{KEEP_BEST} / callbacks.{KEEP_BEST}=null), or "
            f"replace its target: callbacks.{KEEP_BEST}._target_=<a KeepBestWeights subclass or factory>"
        )
    if RESUME in on:
        on[RESUME] = on.pop(RESUME)
    return on


def check_callbacks(cfg: DictConfig) -> None:
    """Every `callbacks` entry, before data or model load (core/entries.py)."""
    from bertlab.core.entries import check_entries

    if "callbacks" not in cfg:  # a run saved by an older bertlab (bertlab evaluate): no callbacks to check
        return
    check_entries("callbacks", cfg.get("callbacks"), CONTEXT, CALLBACK_WHAT)
    callback_entries(cfg)


def keep_best(select: str):
    """KeepBestWeights on `val/<select>`: the best weights and validation metrics of result.json."""
    from bertlab.callbacks.keep_best import KeepBestWeights

    return KeepBestWeights(monitor=f"val/{select}")


def lr_monitor(loggers, logging_interval: str = "step"):
    """Each parameter group's lr (`lr/layer_3/decay`, ...); None without a logger (Lightning refuses one)."""
    if not loggers:
        return None
    from lightning.pytorch.callbacks import LearningRateMonitor

    return LearningRateMonitor(logging_interval=logging_interval)


def resume(run_dir: Path, overrides, enabled: bool, every_s: float):
    """ResumeCheckpoint (resume.py) when `enabled` (resume=true); None otherwise."""
    if not enabled:
        return None
    from bertlab.callbacks.resume import ResumeCheckpoint

    return ResumeCheckpoint(run_dir, every_s=every_s, overrides=overrides)

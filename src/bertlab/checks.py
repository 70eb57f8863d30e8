"""Config checks that run before any data or model is loaded, so a bad value fails in seconds.

Each message names the key, the bad value and what would be valid.
"""

from omegaconf import DictConfig, OmegaConf

from bertlab.errors import ConfigError
from bertlab.optim import optimizer_settings
from bertlab.schedules import SCHEDULES


def _positive(value, key: str, kind=(int, float)) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        raise ConfigError(f"{key}={value} is invalid: it must be a positive number.")


def _missing_keys(node, prefix: str = "") -> list[str]:
    """Dotted keys whose value is `???`. Unlike OmegaConf.missing_keys this walks the unresolved
    config, so an interpolation to a missing key (model=hf's `name: ${model.name_or_path}`) does
    not raise in place of the message."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    found = []
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        found += [path] if value == "???" else _missing_keys(value, path)
    return found


def check_missing(cfg: DictConfig) -> None:
    """Keys left at `???` (e.g. task=csv needs its data_dir, files and columns): one message, all keys."""
    missing = sorted(_missing_keys(OmegaConf.to_container(cfg, resolve=False)))
    if missing:
        given = " ".join(f"{key}=..." for key in missing)
        raise ConfigError(
            f"{', '.join(missing)} must be set (the config leaves them as ???); add {given} to the command."
        )


def check_config(cfg: DictConfig) -> None:
    check_missing(cfg)
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ConfigError(f"seed={cfg.seed} is invalid: it must be a non-negative integer (0 is a seed).")
    if isinstance(cfg.reinit, bool) or not isinstance(cfg.reinit, int) or cfg.reinit < 0:
        raise ConfigError(
            f"reinit={cfg.reinit} is invalid: it must be an integer from 0 (no re-init) to the model's depth."
        )
    if isinstance(cfg.llrd, bool) or not isinstance(cfg.llrd, (int, float)) or not 0 < cfg.llrd <= 1:
        raise ConfigError(f"llrd={cfg.llrd} is invalid: layer-wise lr decay must be in (0, 1] (1.0 = off).")
    mixout, prior_wd = cfg.get("mixout", 0.0), cfg.get("prior_wd", 0.0)
    if isinstance(mixout, bool) or not isinstance(mixout, (int, float)) or not 0 <= mixout < 1:
        raise ConfigError(f"mixout={mixout} is invalid: the mix probability must be in [0, 1) (0 = off).")
    if isinstance(prior_wd, bool) or not isinstance(prior_wd, (int, float)) or not 0 <= prior_wd < float("inf"):
        raise ConfigError(f"prior_wd={prior_wd} is invalid: pre-trained weight decay must be a number >= 0 (0 = off).")
    _positive(cfg.optimizer.lr, "optimizer.lr")
    _positive(cfg.data.batch_size, "data.batch_size", int)
    _positive(cfg.data.eval_batch_size, "data.eval_batch_size", int)
    _positive(cfg.trainer.num_evals, "trainer.num_evals", int)
    _positive(cfg.task.max_length, "task.max_length", int)
    if cfg.trainer.max_steps in (None, -1):
        _positive(cfg.trainer.max_epochs, "trainer.max_epochs", int)
    else:
        _positive(cfg.trainer.max_steps, "trainer.max_steps", int)
    if cfg.task.problem not in ("classification", "regression"):
        raise ConfigError(f"task.problem={cfg.task.problem} is invalid; valid: classification, regression.")
    # the optimizer's and schedule's own checks, run now rather than after the model has loaded
    optimizer_settings(cfg.optimizer)
    if cfg.schedule.get("name") not in SCHEDULES:
        raise ConfigError(f"schedule.name={cfg.schedule.get('name')!r} is unknown; valid: {', '.join(SCHEDULES)}")

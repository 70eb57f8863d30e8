"""Config checks that run before any data or model is loaded, so a bad value fails in seconds.

Each message names the key, the bad value and what would be valid.
"""

from omegaconf import DictConfig

from bertlab.errors import ConfigError


def _positive(value, key: str, kind=(int, float)) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        raise ConfigError(f"{key}={value} is invalid: it must be a positive number.")


def check_config(cfg: DictConfig) -> None:
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ConfigError(f"seed={cfg.seed} is invalid: it must be a non-negative integer (0 is a seed).")
    if isinstance(cfg.reinit, bool) or not isinstance(cfg.reinit, int) or cfg.reinit < 0:
        raise ConfigError(
            f"reinit={cfg.reinit} is invalid: it must be an integer from 0 (no re-init) to the model's depth."
        )
    if not 0 < cfg.llrd <= 1:
        raise ConfigError(f"llrd={cfg.llrd} is invalid: layer-wise lr decay must be in (0, 1] (1.0 = off).")
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

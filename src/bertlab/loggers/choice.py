"""Which loggers a run uses: `logger.name`, one name or a list of them, checked before anything loads.

`logger=wandb|csv|tensorboard|mlflow|none` picks one; `logger=many` (conf/logger/many.yaml) sets
`logger.name` to a list and carries the keys of every logger in it, so several log at once and
`logger=many logger.name=[tensorboard,mlflow]` picks a subset. A list, not one group option per
combination: the keys of each logger are written once (its own YAML), and the choice sweeps like
any other key. The CSV log (`metrics.csv`, which the report reads) is written whenever any logger
is on, so `csv` in a list changes nothing.
"""

from omegaconf import DictConfig, ListConfig

from bertlab.config.extras import require
from bertlab.core.errors import ConfigError

LOGGERS = ("wandb", "csv", "tensorboard", "mlflow", "none")
# the keys each logger reads besides `name`, for the message when a list names one whose keys are absent
LOGGER_KEYS = {"wandb": ("project", "entity", "mode"), "mlflow": ("experiment", "tracking_uri")}


def logger_names(logger: DictConfig) -> list[str]:
    """The loggers `logger.name` asks for, in order, without repeats; [] for none. Raises
    ConfigError for an unknown name, an empty list, `none` in a list, or keys a named logger needs."""
    name = logger.name
    names = list(name) if isinstance(name, (ListConfig, list, tuple)) else [name]
    written = f"[{','.join(map(str, names))}]" if isinstance(name, (ListConfig, list, tuple)) else str(name)
    unknown = [n for n in names if n not in LOGGERS]
    if unknown or not names:
        what = f"{unknown[0]} is unknown" if unknown else "an empty list names no logger"
        raise ConfigError(
            f"logger.name={written}: {what}; valid: {', '.join(LOGGERS)}, or a list of them "
            "(logger=many logger.name=[tensorboard,mlflow])."
        )
    if len(names) > 1 and "none" in names:
        raise ConfigError(f"logger.name={written}: `none` cannot be combined with other loggers; use logger=none.")
    for n in names:
        lacking = [k for k in LOGGER_KEYS.get(n, ()) if k not in logger]
        if lacking:
            raise ConfigError(
                f"logger.name={written} names {n}, whose keys ({', '.join('logger.' + k for k in lacking)}) "
                f"this logger config lacks: use logger=many (which carries every logger's keys) or logger={n}."
            )
    names = list(dict.fromkeys(names))
    return [] if names == ["none"] else names


def check_logger(logger: DictConfig) -> None:
    """The logger keys, before data or model load: the names, and MLflow's tracking URI."""
    names = logger_names(logger)
    for name in names:  # tensorboard and mlflow are an extra (config/extras.py)
        require(f"logger={name}")
    if "mlflow" in names:
        from bertlab.loggers.mlflow_store import check_tracking_uri

        check_tracking_uri(logger.tracking_uri, logger.experiment)

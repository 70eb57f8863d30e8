"""Which loggers a run uses: the entries of `logger`, checked before anything loads.

`logger` is a dict of named entries, each a `_target_` and its arguments (core/entries.py), filled
by a config group option: `logger=wandb|csv|tensorboard|mlflow|none` picks one, `logger=many`
(conf/logger/many.yaml) carries wandb's, tensorboard's and mlflow's entries, each from its own file,
so several log at once; `logger=many ~logger.wandb` leaves one out. A fork adds its own logger with
`+logger.aim._target_=aim.pytorch_lightning.AimLogger` or a yaml in its own config folder. The CSV
log (`metrics.csv`, which the report reads) is written whenever any entry is on.

A run saved by an older bertlab has the former shape, `logger.name` (one name or a list) beside
the keys of every logger it names: `bertlab evaluate` re-checks such a saved config
(legacy_logger_names), and nothing builds its loggers.
"""

from omegaconf import DictConfig, ListConfig

from bertlab.core.errors import ConfigError
from bertlab.core.extras import require

LOGGERS = ("wandb", "csv", "tensorboard", "mlflow", "none")
# the keys each logger reads besides `name` (the former shape), for the message when a list names one whose keys are absent
LOGGER_KEYS = {"wandb": ("project", "entity", "mode"), "mlflow": ("experiment", "tracking_uri")}
# What a `_partial_: true` entry of `logger` may ask for by argument name, given at build time.
CONTEXT = {
    "cfg": "the run's whole config",
    "run_dir": "the run folder",
    "run_name": "the run's name (its overrides)",
    "group": "the sweep's group, or None",
    "tags": "the run's tags",
    "keep_rows": "metrics.csv's rows a resumed run continues",
    "resumed": "whether the run continues from its resume checkpoint",
}
LOGGER_WHAT = "a Lightning logger class, or a function returning loggers"

# bertlab's own loggers' builders, the `_target_` of conf/logger/<name>.yaml's entry (imported only when on),
# and the logger each is: the extra it needs (core/extras.py), MLflow's URI check
OWN_TARGETS = {
    "bertlab.loggers.build.wandb_logger": "wandb",
    "bertlab.loggers.run_csv.csv_logger": "csv",
    "bertlab.loggers.tensorboard_dir.tensorboard_logger": "tensorboard",
    "bertlab.loggers.mlflow_store.mlflow_logger": "mlflow",
}


def is_legacy(logger) -> bool:
    """Whether `logger` has the former shape: `name` a logger's name or a list of them, not an entry."""
    return logger is not None and "name" in logger and not isinstance(logger.get("name"), (DictConfig, dict))


def logger_entries(logger) -> dict:
    """The `logger` entries that are on, in order ({} for logger=none)."""
    from bertlab.core.entries import entries

    if is_legacy(logger):
        raise ConfigError(
            f"logger.name={logger.get('name')} is the former shape of the logger config (a run saved by an older "
            "bertlab); a run now picks its loggers with logger=wandb|csv|tensorboard|mlflow|many|none"
        )
    return entries(logger)


def logger_names(logger) -> list[str]:
    """The names of the loggers that are on, in order, without repeats; [] for none. Raises
    ConfigError for a logger config of the former shape (`logger.name`) that names an unknown logger."""
    if is_legacy(logger):
        return legacy_logger_names(logger)
    return list(logger_entries(logger))


def legacy_logger_names(logger: DictConfig) -> list[str]:
    """The loggers `logger.name` asks for in the former shape, in order, without repeats; [] for none.
    Raises ConfigError for an unknown name, an empty list, `none` in a list, or keys a named logger needs."""
    name = logger.name
    names = list(name) if isinstance(name, (ListConfig, list, tuple)) else [name]
    written = f"[{','.join(map(str, names))}]" if isinstance(name, (ListConfig, list, tuple)) else str(name)
    unknown = [n for n in names if n not in LOGGERS]
    if unknown or not names:
        what = f"{unknown[0]} is unknown" if unknown else "an empty list names no logger"
        raise ConfigError(
            f"logger.name={written}: {what}; valid: {', '.join(LOGGERS)}, or a list of them "
            "(a config of the former shape; now: logger=many ~logger.wandb)."
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


def check_logger(logger) -> None:
    """The logger config, before data or model load: every entry's target and keys (a fork's too),
    the extras bertlab's own loggers need, and MLflow's tracking URI."""
    from bertlab.core.entries import check_entries
    from bertlab.loggers.mlflow_store import check_tracking_uri

    if is_legacy(logger):  # a run saved by an older bertlab (bertlab evaluate)
        names = legacy_logger_names(logger)
        for name in names:  # tensorboard and mlflow are an extra (core/extras.py)
            require(f"logger={name}")
        if "mlflow" in names:
            check_tracking_uri(logger.tracking_uri, logger.experiment, keys="logger")
        return
    on = logger_entries(logger)
    own = {
        name: OWN_TARGETS.get(str(e.get("_target_"))) if isinstance(e, DictConfig) else None for name, e in on.items()
    }
    for logger_name in own.values():  # before importing the targets: tensorboard and mlflow are an extra
        if logger_name is not None:
            require(f"logger={logger_name}")
    check_entries("logger", logger, CONTEXT, LOGGER_WHAT)
    for name, entry in on.items():
        if own[name] == "mlflow":
            check_tracking_uri(entry.get("tracking_uri"), entry.get("experiment", "bertlab"), keys=f"logger.{name}")

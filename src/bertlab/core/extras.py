"""Options whose packages are an extra of bertlab's install, and the one check that they are there.

`pip install bertlab` installs what a default run imports; the rest comes with an extra
(pyproject.toml's [project.optional-dependencies]; `make install` installs them all). Choosing an
option whose extra is missing stops before any work with one message naming the pip command, not
an ImportError from deep inside Hydra, Lightning or a worker process. EXTRAS is the one table:
a new option that needs an optional package is one line here and its package in pyproject.toml.
"""

import importlib.util

from bertlab.core.errors import ConfigError

HUB_TASK = "a task read from the Hugging Face hub (task.data_dir unset)"

# the option, as a user writes it -> (the extra that brings it, the modules it imports)
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "hydra/launcher=gpus": ("sweeps", ("ray",)),
    "hydra/launcher=slurm": ("sweeps", ("submitit", "hydra_plugins.hydra_submitit_launcher")),
    "hydra/launcher=submitit_local": ("sweeps", ("submitit", "hydra_plugins.hydra_submitit_launcher")),
    "hydra/launcher=submitit_slurm": ("sweeps", ("submitit", "hydra_plugins.hydra_submitit_launcher")),
    "hparams_search": ("search", ("optuna",)),  # every option of the group
    "logger=tensorboard": ("loggers", ("tensorboard",)),
    "logger=mlflow": ("loggers", ("mlflow",)),
    "augment.wordnet_dir": ("augment", ("nltk",)),  # augment=eda's synonyms from WordNet (a synonyms_file needs none)
    "bertlab prepare --wordnet": ("augment", ("nltk",)),
    "bertlab prepare --backtranslate": ("augment", ("sentencepiece", "sacremoses")),  # MarianTokenizer's
    HUB_TASK: ("hub", ("datasets",)),
    "peft=lora": ("peft", ("peft",)),  # bertlab/methods/peft_tuning.py; peft=bitfit is ours and needs none
    "peft=ia3": ("peft", ("peft",)),
    "peft=prefix": ("peft", ("peft",)),
    "approach=setfit": ("setfit", ("setfit",)),
}


MANY_LOGGERS = ("wandb", "tensorboard", "mlflow")  # conf/logger/many.yaml's entries


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module hidden as None
        return False


def require(option: str) -> None:
    """A ConfigError naming the pip command when `option` (a key of EXTRAS) lacks its packages."""
    entry = EXTRAS.get(option) or EXTRAS.get(option.split("=")[0])  # `hparams_search=x`: the whole group
    if entry is None:
        return
    extra, modules = entry
    missing = [m.split(".")[-1] for m in modules if not _installed(m)]
    if missing:
        raise ConfigError(
            f"{option} needs bertlab's `{extra}` extra ({', '.join(missing)} not installed): "
            f'pip install "bertlab[{extra}]" (from a clone: pip install -e ".[{extra}]"), then run the command again.'
        )


def _values(override) -> list:
    """The values an override sets: every one of a sweep (`logger=csv,mlflow`), a list's items."""
    values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
    flat = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return [str(v) for v in flat]


def command_line_options(overrides) -> list[str]:
    """EXTRAS' options that parsed command-line overrides choose. The packaged configs choose none
    of them (their defaults install with bertlab), so the command line is where they are chosen."""
    options = []
    # logger=many's loggers, less those the command line drops (`~logger.wandb`)
    dropped = {o.key_or_group.lstrip("~").removeprefix("logger.") for o in overrides if o.is_delete()}
    for override in overrides:
        key = override.key_or_group.lstrip("+~")
        if override.is_delete():
            continue
        if key == "logger":
            many = [f"logger={n}" for n in MANY_LOGGERS if n not in dropped]
            options += [o for v in _values(override) for o in (many if v == "many" else [f"logger={v}"])]
            continue
        values = _values(override)
        if key == "hparams_search":
            options += [f"hparams_search={v}" for v in values if v not in ("null", "None")]
        elif key in ("hydra/launcher", "augment", "peft", "approach"):
            options += [f"{key}={v}" for v in values]
    return options


def check_extras(options: list[str]) -> None:
    """The first option (in the order given) whose extra is missing: one ConfigError."""
    for option in options:
        require(option)

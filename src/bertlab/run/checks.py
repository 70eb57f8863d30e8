"""Config checks that run before any data or model is loaded, so a bad value fails in seconds.

Each message names the key, the bad value and what would be valid.

Trainer settings are checked against what Lightning accepts and what this machine has: Lightning
rejects some late (after the model has loaded) and silently reinterprets others (a negative
gradient_clip_val turns clipping off, 16-mixed on a CPU becomes bf16-mixed, a seed beyond numpy's
range raises mid-run), so each key of conf/trainer/default.yaml has its rule in TRAINER_RULES.
"""

import os
import typing

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from bertlab.callbacks.entries import check_callbacks
from bertlab.core import devices
from bertlab.core.errors import ConfigError
from bertlab.core.limits import check_limits
from bertlab.core.paths import CONF_DIR
from bertlab.core.values import MAX_SEED, check_count, check_flag, check_number, check_seed, invalid, is_integer
from bertlab.data.augment import check_augment
from bertlab.data.features import check_feature_keys
from bertlab.data.fields import unique_labels
from bertlab.data.k_shot import check_k_shot
from bertlab.heads.build import check_head
from bertlab.loggers.choice import check_logger
from bertlab.methods.auxiliary import check_aux
from bertlab.methods.distill import check_distill
from bertlab.methods.mixout import check_mixout
from bertlab.methods.peft_tuning import check_peft
from bertlab.methods.prior_wd import check_prior_wd
from bertlab.methods.reinit import check_reinit
from bertlab.optim.optimizer import check_optimizer
from bertlab.optim.param_groups import check_llrd
from bertlab.optim.schedules import check_schedule
from bertlab.pretrain.settings import check_pretrain
from bertlab.problems.registry import problem_of
from bertlab.run.saved_run import COMPLETE_GROUPS


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


def _keys_every_option_sets(group: str) -> tuple[set[str], str]:
    options = sorted((CONF_DIR / group).glob("*.yaml"))
    # only the top-level keys: PyYAML's C loader (PyYAML is OmegaConf's parser, installed with it)
    # reads the 14 files in ~10 ms, OmegaConf.load in ~0.1 s of every run's start-up (docs/speed.md)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    keys = [set(yaml.load(path.read_text(), Loader=loader) or {}) - {"defaults"} for path in options]
    return set.intersection(*keys), options[0].name


def check_complete(cfg: DictConfig) -> None:
    """A task or trainer config of the user's own that leaves out a key ours all set: one message."""
    for group in COMPLETE_GROUPS:
        required, example = _keys_every_option_sets(group)
        lacking = sorted(f"{group}.{key}" for key in required - set(cfg[group].keys()))
        if lacking:
            raise ConfigError(
                f"{', '.join(lacking)} not set: the {group} config leaves out keys every packaged {group} option "
                f"sets; add them to your {group} YAML (start from a copy of conf/{group}/{example})."
            )


def check_missing(cfg: DictConfig) -> None:
    """Keys left at `???` (e.g. task=csv needs its data_dir, files and columns): one message, all keys."""
    missing = sorted(_missing_keys(OmegaConf.to_container(cfg, resolve=False)))
    if missing:
        given = " ".join(f"{key}=..." for key in missing)
        raise ConfigError(
            f"{', '.join(missing)} must be set (the config leaves them as ???); add {given} to the command."
        )


# Several devices are refused, not run: under DDP Lightning shards validation and test with a
# DistributedSampler that repeats examples to even out the shards (metrics over duplicates: silently
# wrong), every process would print, log and write result.json, and the best weights kept in memory
# (callbacks/keep_best.py) and the resume checkpoint are one process's. Few-sample runs are small:
# a machine's devices serve a sweep better, one job per device (hydra/launcher=gpus).
ONE_DEVICE = (
    "a run trains on one device. Several devices (DDP) are refused: validation and test would score "
    "DistributedSampler's padded shards (repeated examples) and every process would print and write "
    "result.json. Use trainer.devices=1 (or one index, e.g. trainer.devices=[1]); to use several GPUs, "
    "sweep one job per GPU: python train.py -m hydra/launcher=gpus seed=0,1,2,3"
)


def world_size(value, accelerator: str) -> int:
    """The processes Lightning starts for a valid trainer.devices: `auto` is one process on a CPU
    (Lightning's CPUAccelerator) and every device elsewhere; -1 is every device (every core)."""
    if isinstance(value, ListConfig):
        return len(value)
    if value in ("auto", -1, "-1"):
        if accelerator == "cpu":
            return 1 if value == "auto" else os.cpu_count() or 1
        return devices.accelerators_here()[accelerator].auto_device_count()
    return int(value)


def _check_devices(value, key: str, accelerator: str) -> None:
    if value not in ("auto", -1, "-1"):  # else all of them
        here = devices.accelerators_here()[accelerator]
        count = (os.cpu_count() or 1) if accelerator == "cpu" else here.auto_device_count()
        unit = "CPU processes" if accelerator == "cpu" else f"{accelerator} devices"
        valid = f"valid here: 1, or one index from 0 to {count - 1}" if accelerator != "cpu" else "valid: 1"
        if isinstance(value, ListConfig) and accelerator != "cpu":
            indices = list(value)
            if not (
                indices and all(is_integer(i) and 0 <= i < count for i in indices) and len(set(indices)) == len(indices)
            ):
                raise ConfigError(
                    f"{key}={value} is invalid: this machine has {count} {unit} "
                    f"(indices 0 to {count - 1}); {valid}, as a list: [i]."
                )
        elif not is_integer(value) or not 1 <= value <= count:
            raise ConfigError(
                f"{key}={value} is invalid on trainer.accelerator={accelerator}: this machine has {count} {unit}; {valid}."
            )
    processes = world_size(value, accelerator)
    if processes > 1:
        raise ConfigError(f"{key}={value} means {processes} processes: {ONE_DEVICE}.")


def _check_precision(value, key: str, accelerator: str) -> None:
    from lightning.fabric.connector import _PRECISION_INPUT_STR

    name = devices.PRECISION_ALIASES.get(value, value)
    valid = devices.precisions_here(accelerator)
    if value == "auto" or name in valid:
        return
    if name not in typing.get_args(_PRECISION_INPUT_STR):
        problem = "is unknown to Lightning"
    elif accelerator == "cpu" and name == "16-mixed":
        problem = "is not supported on a CPU (Lightning would silently train in bf16-mixed instead)"
    else:
        problem = f"is not available on this machine's {accelerator}"
    raise ConfigError(f"{key}={value} {problem}; valid here: auto, {', '.join(valid)}.")


def _check_limit(value, key: str, what: str) -> None:
    # Lightning's rule (a fraction or a number of batches), less 0, which would skip the split
    if isinstance(value, float) and 0 < value <= 1 or is_integer(value) and value >= 1:
        return
    raise invalid(key, value, f"it must be a fraction in (0, 1] or a number of batches >= 1 (0 would skip {what})")


def _check_clip(value, key: str) -> None:
    check_number(
        value,
        key,
        "it must be a number >= 0 (0 or null = no clipping); Lightning would silently train without clipping",
        low=0,
        allow=(None,),
    )


def _check_compile(value, key: str) -> None:
    if isinstance(value, bool):
        return
    import torch._dynamo

    if value not in torch._dynamo.list_backends(exclude_tags=()):  # the debugging ones too
        raise ConfigError(
            f"{key}={value} is invalid; valid: true (inductor), false, or a torch.compile backend: "
            f"{', '.join(torch._dynamo.list_backends())}, or aot_eager / eager (debugging)."
        )


def _max_steps(value, key: str) -> None:
    check_count(
        value,
        key,
        allow=(None, -1),
        why="it must be an integer >= 1 (optimizer steps), or -1 to train for trainer.max_epochs",
    )


def _max_epochs_argument(value, t) -> dict:
    # Lightning stops at whichever limit comes first; a step budget must not be cut by max_epochs
    return {"max_epochs": -1 if t.max_steps not in (None, -1) else value}


class TrainerKey(typing.NamedTuple):
    """One key of conf/trainer/default.yaml: its rule and what `lightning.Trainer(...)` gets from it.

    check(value, key, accelerator): raises the key's ConfigError; `accelerator` is the resolved one
    (devices and precision depend on it). to_trainer: SAME (the Trainer's argument of the same name,
    the value as it is), a function (value, the trainer node) -> the Trainer's arguments, or None:
    not a Trainer argument; `read_by` then names the code that reads it."""

    check: typing.Callable
    to_trainer: typing.Callable | str | None = "same"
    read_by: str = ""


SAME = "same"


def _rule(rule):  # a rule that does not depend on the accelerator
    return lambda value, key, accelerator: rule(value, key)


# The one table of trainer keys: a new key is its line in conf/trainer/default.yaml and one row here
# (its rule, and whether and how it reaches lightning.Trainer); config checks every row before any
# data or model loads, run/trainer.py's build_trainer passes the rows' arguments (trainer_arguments).
# It lives here, not in run/, because the check runs first and config/ must not import run/.
# A test checks that the rows and the YAML's keys are the same.
TRAINER_RULES: dict[str, TrainerKey] = {
    "accelerator": TrainerKey(
        lambda value, key, accelerator: None,  # resolved first, in check_trainer (resolve_accelerator)
        lambda value, t: {"accelerator": devices.resolve_accelerator(value)},
    ),
    "devices": TrainerKey(lambda value, key, accelerator: _check_devices(value, key, accelerator)),
    "precision": TrainerKey(
        lambda value, key, accelerator: _check_precision(value, key, accelerator),
        lambda value, t: {"precision": devices.resolve_precision(value)},
    ),
    # checked with max_steps in check_config: only one of them is used
    "max_epochs": TrainerKey(lambda value, key, accelerator: None, _max_epochs_argument),
    "max_steps": TrainerKey(_rule(_max_steps), lambda value, t: {"max_steps": -1 if value is None else value}),
    "accumulate_grad_batches": TrainerKey(_rule(lambda v, k: check_count(v, k, "batches per optimizer step"))),
    "gradient_clip_val": TrainerKey(_rule(_check_clip)),
    "num_evals": TrainerKey(
        _rule(lambda v, k: check_count(v, k, "validations during training")),
        None,
        "run/trainer.py validation_interval (the Trainer's val_check_interval)",
    ),
    "limit_val_batches": TrainerKey(
        _rule(lambda v, k: _check_limit(v, k, "validation, and with it the choice of the best weights"))
    ),
    "limit_test_batches": TrainerKey(
        _rule(lambda v, k: _check_limit(v, k, "the test set, leaving the run without test scores"))
    ),
    "compile": TrainerKey(_rule(_check_compile), None, "run/fit.py (torch.compile of the model)"),
    "gradient_checkpointing": TrainerKey(_rule(check_flag), None, "model/gradient_checkpointing.py"),
    "deterministic": TrainerKey(_rule(lambda v, k: check_flag(v, k, also=("warn",)))),
    "log_every_n_steps": TrainerKey(_rule(lambda v, k: check_count(v, k, "optimizer steps between logged rows"))),
    "diagnostics_every_n_steps": TrainerKey(
        _rule(lambda v, k: check_count(v, k, "optimizer steps between diagnostics")),
        None,
        "callbacks/diagnostics.py",
    ),
    "enable_progress_bar": TrainerKey(_rule(check_flag)),
}
MACHINE_KEYS = ("accelerator", "devices", "precision")  # valid values depend on this machine


def check_trainer(cfg: DictConfig) -> None:
    accelerator = devices.resolve_accelerator(cfg.trainer.accelerator)
    for key in MACHINE_KEYS:  # in this order: devices and precision name the resolved accelerator
        TRAINER_RULES[key].check(cfg.trainer[key], f"trainer.{key}", accelerator)
    for key, value in cfg.trainer.items():
        if key not in MACHINE_KEYS:
            TRAINER_RULES[key].check(value, f"trainer.{key}", accelerator)


def trainer_arguments(t: DictConfig) -> dict:
    """`lightning.Trainer`'s arguments from the trainer node, row by row of TRAINER_RULES (build_trainer)."""
    kwargs = {}
    for key, value in t.items():
        row = TRAINER_RULES[key]
        if row.to_trainer == SAME:
            kwargs[key] = value
        elif row.to_trainer is not None:
            kwargs |= row.to_trainer(value, t)
    return kwargs


def check_config(cfg: DictConfig) -> None:
    check_complete(cfg)
    check_missing(cfg)
    for key in ("seed", "init_seed", "order_seed"):  # the last two follow seed unless set apart
        check_seed(
            cfg[key], key, f"it must be an integer from 0 to 2**32 - 1 = {MAX_SEED} (numpy's seed range; 0 is a seed)"
        )
    if not is_integer(cfg.task.data_seed):
        raise invalid("task.data_seed", cfg.task.data_seed, "it must be an integer")
    # LM-BFF's K-shot draw (data/k_shot.py), by the kind of the task's labels (its Problem's)
    check_k_shot(cfg.task, problem_of(cfg.task).kind if cfg.task.get("k_shot") is not None else None)
    for key in ("reinit_pooler", "save_weights", "resume"):
        check_flag(cfg[key], key)
    check_flag(cfg.data.group_by_length, "data.group_by_length")
    check_count(cfg.data.num_workers, "data.num_workers", "0 = load in the main process", minimum=0)
    check_number(cfg.resume_every_s, "resume_every_s", "it must be a number of seconds >= 0", low=0)
    check_trainer(cfg)
    check_limits(cfg.get("limits"))
    check_logger(cfg.logger)
    check_callbacks(cfg)  # every callbacks entry's target and keys (a fork's too; callbacks/entries.py)
    # The methods' rules live beside the code they protect, which calls them too when used as a
    # library; here they run before any data or model loads (reinit's upper bound needs the
    # model's structure: model/load.py checks it before the weights load).
    check_reinit(cfg.reinit)
    check_llrd(cfg.llrd)
    check_mixout(cfg.mixout)
    check_prior_wd(cfg.prior_wd)
    check_augment(cfg.augment)
    check_distill(cfg.distill)
    if "peft" in cfg:  # a saved run of an older bertlab has no peft group
        check_peft(cfg)  # its keys, and what it cannot compose with (reinit, mixout, prior_wd, ...)
    if "aux" in cfg:  # a saved run of an older bertlab has no aux or features group
        check_aux(cfg)
    check_feature_keys(cfg)
    for key in ("data.batch_size", "data.eval_batch_size", "task.max_length"):
        check_count(OmegaConf.select(cfg, key), key, why="it must be a positive number")
    unique_labels(cfg.task.get("labels"))  # every problem's: a duplicate class is never a target
    if cfg.trainer.max_steps in (None, -1):
        check_count(cfg.trainer.max_epochs, "trainer.max_epochs", why="it must be a positive number")
    problem = problem_of(cfg.task)
    problem.check(cfg)  # task.problem is known, and its own keys' rules (problems/)
    # the approach's own rules (approach=prompt: template, label words, demonstrations); imported
    # here, not above: run/approach.py brings each approach's model code
    from bertlab.run.approach import check_approach

    check_approach(cfg)
    # the optimizer's and schedule's own checks (optimizer.lr's too), run now rather than after the model has loaded
    check_schedule(cfg.schedule, check_optimizer(cfg.optimizer))
    check_head(cfg.head, problem)  # its target and keys; head.layers against the model's depth: before its weights load
    # the further pre-training stages' own keys (pretrain/settings.py); pretrain=none reads none of
    # them (its pretrain.max_length follows task.max_length, whose own check names the right key)
    if "pretrain" in cfg and cfg.pretrain.stages:
        check_pretrain(cfg.pretrain, problem=problem.kind, task=cfg.task.name)

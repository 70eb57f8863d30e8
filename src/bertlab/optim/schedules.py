"""Learning-rate schedules from the `schedule` config group, stepped once per optimizer step.

Each option's `_target_` is a function (optimizer, num_warmup_steps, num_training_steps, **kwargs)
-> scheduler; ours are the `transformers` functions, so the curves match HF's Trainer, and a new
schedule is a new yaml file naming its function. All but one: the default, `linear`, is
`linear_schedule_with_warmup` below, transformers' own arithmetic written out (tests/unit/
test_schedules.py compares the two at every step), because importing transformers' schedules
imports `transformers.trainer_utils`, which imports peft wherever peft is installed: 0.2 s of every
run's start-up on 2 cores, for a run that uses no adapter. Warmup, for any of them:
`warmup_steps` if set, else warmup_ratio * total_steps rounded by `warmup_rounding`: `ceil` as HF's
`TrainingArguments` does (any ratio > 0 warms up for at least one step; the default), or `floor`
as the paper's code does (`int(args.warmup_ratio * t_total)`, run_glue.py; experiment=paper_*). The LR multiplier is relative per group, so
layer-wise LR decay survives the schedule.
"""

import inspect
import math
import warnings
from collections.abc import Mapping
from functools import partial

import torch

from bertlab.core.errors import ConfigError
from bertlab.core.target import call, locate, target_kwargs, with_target
from bertlab.core.values import full_key, is_count, is_number

# bertlab's checks of the arguments of the transformers schedules (any `_target_` can be used;
# these are the ones whose arguments we know): the function, by the module that defines it and its
# name (named, not imported: see the docstring), -> argument -> rule (value, optimizer) -> problem or None
_NUMBER = "a number >= 0"
RULES = {
    "transformers.optimization.get_cosine_schedule_with_warmup": {
        "num_cycles": lambda v, o: None if v > 0 else "a number > 0"
    },
    "transformers.optimization.get_cosine_with_hard_restarts_schedule_with_warmup": {
        "num_cycles": lambda v, o: None if v >= 1 and v == int(v) else "an integer >= 1"
    },
    "transformers.optimization.get_polynomial_decay_schedule_with_warmup": {
        "power": lambda v, o: None if v > 0 else "a number > 0",
        # transformers measures lr_end against the optimizer's default lr (the head's under LLRD).
        "lr_end": lambda v, o: (
            None if v < o.defaults["lr"] else f"0 <= lr_end < {full_key('optimizer.lr')} ({o.defaults['lr']})"
        ),
    },
}
WARMUP_KEYS = {"name", "warmup_ratio", "warmup_steps", "warmup_rounding"}  # read here, not by the function
SUPPLIED = {
    "num_warmup_steps": "from {schedule}.warmup_ratio or {schedule}.warmup_steps",  # {schedule}: full_key
    "num_training_steps": "the run's optimizer steps, from trainer.max_steps or max_epochs",
}
WHAT = (
    "a function (optimizer, num_warmup_steps, num_training_steps, **kwargs) -> LR scheduler, "
    "e.g. transformers.get_linear_schedule_with_warmup"
)


def _linear_multiplier(current_step: int, *, num_warmup_steps: int, num_training_steps: int) -> float:
    """transformers' `_get_linear_schedule_with_warmup_lr_lambda` (optimization.py, 5.25), as it is."""
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))


def linear_schedule_with_warmup(
    optimizer: torch.optim.Optimizer, num_warmup_steps: int, num_training_steps: int, last_epoch: int = -1
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup from 0 to each group's LR, then linear decay to 0 at `num_training_steps`:
    `transformers.get_linear_schedule_with_warmup` (BERT's, and the paper's run_glue.py:187), the
    same LambdaLR over the same partial, so a checkpoint's scheduler state is the same too."""
    multiplier = partial(_linear_multiplier, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier, last_epoch)


# ceil: HF's Trainer; floor: the paper's code, `int(warmup_ratio * t_total)`
WARMUP_ROUNDING = {"ceil": math.ceil, "floor": math.floor}


def warmup_steps(sched: Mapping, total_steps: int) -> int:
    """The number of warmup steps `sched` asks for out of `total_steps` optimizer steps."""
    steps, ratio = sched.get("warmup_steps"), sched.get("warmup_ratio", 0.0)
    if steps is not None:
        if not is_count(steps, minimum=0):
            raise ConfigError(
                f"{full_key('schedule.warmup_steps')}={steps!r} is invalid; valid: an integer >= 0, or null"
            )
        return steps
    if not is_number(ratio) or not 0 <= ratio <= 1:
        raise ConfigError(f"{full_key('schedule.warmup_ratio')}={ratio!r} is invalid; valid: a number in [0, 1]")
    rounding = sched.get("warmup_rounding", "ceil")
    if rounding not in WARMUP_ROUNDING:
        raise ConfigError(
            f"{full_key('schedule.warmup_rounding')}={rounding!r} is invalid; valid: {', '.join(WARMUP_ROUNDING)}"
        )
    return WARMUP_ROUNDING[rounding](ratio * total_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer, sched: Mapping, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The scheduler `sched._target_` returns, stepped per optimizer step; `total_steps` counts
    optimizer steps (after accumulation). The function gets `num_warmup_steps` and
    `num_training_steps` when it takes them, and the config's other keys as keyword arguments."""
    cfg = with_target("schedule", sched, builder_keys=WARMUP_KEYS, example="linear")
    name = cfg["name"]
    function = locate("schedule", cfg, WHAT)
    if isinstance(total_steps, float) and total_steps.is_integer():
        total_steps = int(total_steps)  # Lightning's estimate may come as a float
    if not is_count(total_steps):
        raise ConfigError(
            f"total_steps={total_steps!r} is invalid; set trainer.max_steps or max_epochs "
            "so that training has a finite number (>= 1) of optimizer steps"
        )
    own = {k: v for k, v in cfg.items() if k not in WARMUP_KEYS - {"name"}}
    supplied = {k: v.format(schedule=full_key("schedule")) for k, v in SUPPLIED.items()}
    kwargs = target_kwargs("schedule", own, function, supplied, read_here=sorted(WARMUP_KEYS - {"name"}))
    warmup = warmup_steps(cfg, total_steps)
    _check_arguments(function, kwargs, optimizer)

    takes = _parameters(function)
    steps = {}
    if "num_warmup_steps" in takes:
        steps["num_warmup_steps"] = warmup
    elif warmup:
        raise ConfigError(
            f"{full_key('schedule')}={name} has no warmup but asks for {warmup} warmup steps; "
            f"use {full_key('schedule')}=constant_warmup, or warmup_ratio=0"
        )
    if "num_training_steps" in takes:
        steps["num_training_steps"] = total_steps
    if warmup > total_steps:
        warnings.warn(
            f"schedule.warmup_steps={warmup} exceeds the {total_steps} optimizer steps: the LR never reaches its peak",
            stacklevel=2,
        )
    return call("schedule", cfg, kwargs, optimizer, **steps)


def check_schedule(sched: Mapping, optimizer: torch.optim.Optimizer) -> None:
    """Every check of `build_scheduler` before the model has loaded, over `optimizer` (e.g. the
    stand-in of `check_optimizer`) and a nominal run of 1000 steps (the real count is only known
    at fit time, and no rule depends on it but the warning about too long a warmup)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_scheduler(optimizer, sched, 1000)


def _parameters(function) -> set[str]:
    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):  # no signature to read: pass both step counts
        return set(SUPPLIED)


def _check_arguments(function, kwargs: dict, optimizer: torch.optim.Optimizer) -> None:
    """Our rules for the arguments of the transformers schedules (RULES); the function's defaults
    stand in for the arguments a config leaves out."""
    rules = RULES.get(f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}")
    if not rules:
        return
    defaults = {k: p.default for k, p in inspect.signature(function).parameters.items()}
    for key, rule in rules.items():
        value = kwargs.get(key, defaults[key])
        if not is_number(value, finite=True) or value < 0:
            raise ConfigError(f"{full_key('schedule')}.{key}={value!r} is invalid; valid: {_NUMBER}")
        problem = rule(value, optimizer)
        if problem:
            raise ConfigError(f"{full_key('schedule')}.{key}={value!r} is invalid; valid: {problem}")

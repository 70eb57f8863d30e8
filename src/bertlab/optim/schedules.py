"""Learning-rate schedules from the `schedule` config group, stepped once per optimizer step.

Each is the `transformers` function of the same shape, so the curves match HF's Trainer. Warmup:
`warmup_steps` if set, else warmup_ratio * total_steps rounded by `warmup_rounding`: `ceil` as HF's
`TrainingArguments` does (any ratio > 0 warms up for at least one step; the default), or `floor`
as the paper's code does (`int(args.warmup_ratio * t_total)`, run_glue.py; experiment=paper_*). The LR multiplier is relative per group, so
layer-wise LR decay survives the schedule.
"""

import math
import warnings
from collections.abc import Mapping

import torch
from transformers import (
    get_constant_schedule,
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_cosine_with_hard_restarts_schedule_with_warmup,
    get_linear_schedule_with_warmup,
    get_polynomial_decay_schedule_with_warmup,
)

from bertlab.core.errors import ConfigError

# name -> (function, extra config keys with their defaults)
SCHEDULES = {
    "linear": (get_linear_schedule_with_warmup, {}),
    "constant": (get_constant_schedule, {}),
    "constant_warmup": (get_constant_schedule_with_warmup, {}),
    "cosine": (get_cosine_schedule_with_warmup, {"num_cycles": 0.5}),
    "cosine_restarts": (get_cosine_with_hard_restarts_schedule_with_warmup, {"num_cycles": 2}),
    "polynomial": (get_polynomial_decay_schedule_with_warmup, {"power": 1.0, "lr_end": 1e-7}),
}


# ceil: HF's Trainer; floor: the paper's code, `int(warmup_ratio * t_total)`
WARMUP_ROUNDING = {"ceil": math.ceil, "floor": math.floor}


def warmup_steps(sched: Mapping, total_steps: int) -> int:
    """The number of warmup steps `sched` asks for out of `total_steps` optimizer steps."""
    steps, ratio = sched.get("warmup_steps"), sched.get("warmup_ratio", 0.0)
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ConfigError(f"schedule.warmup_steps={steps!r} is invalid; valid: an integer >= 0, or null")
        return steps
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
        raise ConfigError(f"schedule.warmup_ratio={ratio!r} is invalid; valid: a number in [0, 1]")
    rounding = sched.get("warmup_rounding", "ceil")
    if rounding not in WARMUP_ROUNDING:
        raise ConfigError(f"schedule.warmup_rounding={rounding!r} is invalid; valid: {', '.join(WARMUP_ROUNDING)}")
    return WARMUP_ROUNDING[rounding](ratio * total_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer, sched: Mapping, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-optimizer-step LambdaLR; `total_steps` counts optimizer steps (after accumulation)."""
    name = sched.get("name")
    if name not in SCHEDULES:
        raise ConfigError(f"schedule.name={name!r} is unknown; valid: {', '.join(SCHEDULES)}")
    if isinstance(total_steps, float) and total_steps.is_integer():
        total_steps = int(total_steps)  # Lightning's estimate may come as a float
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ConfigError(
            f"total_steps={total_steps!r} is invalid; set trainer.max_steps or max_epochs "
            "so that training has a finite number (>= 1) of optimizer steps"
        )
    function, extra = SCHEDULES[name]
    unknown = set(sched.keys()) - {"name", "warmup_ratio", "warmup_steps", "warmup_rounding", *extra}
    if unknown:
        raise ConfigError(
            f"schedule={name} has unknown key(s) {sorted(unknown)}; "
            f"valid: name, warmup_ratio, warmup_steps, warmup_rounding{''.join(', ' + k for k in extra)}"
        )
    warmup = warmup_steps(sched, total_steps)
    kwargs = {k: sched.get(k, default) for k, default in extra.items()}
    _check_extra(name, kwargs, optimizer)

    if name == "constant":
        if warmup:
            raise ConfigError(
                f"schedule=constant has no warmup but asks for {warmup} warmup steps; "
                "use schedule=constant_warmup, or warmup_ratio=0"
            )
        return function(optimizer)
    if warmup > total_steps:
        warnings.warn(
            f"schedule.warmup_steps={warmup} exceeds the {total_steps} optimizer steps: the LR never reaches its peak",
            stacklevel=2,
        )
    if name == "constant_warmup":
        return function(optimizer, num_warmup_steps=warmup)
    return function(optimizer, num_warmup_steps=warmup, num_training_steps=total_steps, **kwargs)


def _check_extra(name: str, kwargs: dict, optimizer: torch.optim.Optimizer) -> None:
    for key, value in kwargs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            raise ConfigError(f"schedule.{key}={value!r} is invalid; valid: a number >= 0")
    if name == "cosine_restarts" and (kwargs["num_cycles"] < 1 or kwargs["num_cycles"] != int(kwargs["num_cycles"])):
        raise ConfigError(f"schedule.num_cycles={kwargs['num_cycles']!r} is invalid; valid: an integer >= 1")
    if name == "cosine" and kwargs["num_cycles"] <= 0:
        raise ConfigError(f"schedule.num_cycles={kwargs['num_cycles']!r} is invalid; valid: a number > 0")
    if name == "polynomial":
        if kwargs["power"] <= 0:
            raise ConfigError(f"schedule.power={kwargs['power']!r} is invalid; valid: a number > 0")
        # transformers measures lr_end against the optimizer's default lr (the head's under LLRD).
        lr = optimizer.defaults["lr"]
        if not kwargs["lr_end"] < lr:
            raise ConfigError(
                f"schedule.lr_end={kwargs['lr_end']!r} is invalid; valid: 0 <= lr_end < optimizer.lr ({lr})"
            )

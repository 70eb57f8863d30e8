"""The optimizer the `optimizer` config group names by `_target_`, over the model's parameter groups.

Any optimizer class (or factory) that takes the parameter groups first works: the groups (weight
decay on/off, layer-wise LR decay: `param_groups.py`) are built from `lr` and `weight_decay`
whatever the class, so those two rules live here, and each class checks its own other arguments
(ours: `adam.adam_family`). `name` labels the run in result.json and the W&B tags.
"""

import math
from collections.abc import Mapping

import torch

from bertlab.core.target import call, locate, plain, target_kwargs, with_target
from bertlab.core.values import full_key
from bertlab.optim.param_groups import param_groups
from bertlab.optim.values import checked_number

WHAT = "an optimizer class or factory that takes the parameter groups first, e.g. torch.optim.SGD"


def optimizer_arguments(opt: Mapping) -> tuple[dict, dict]:
    """(the config with its `_target_`, the checked keyword arguments of the target, and
    `head_lr_mult`, which param_groups reads and the optimizer class never sees)."""
    cfg = with_target("optimizer", opt, builder_keys={"name", "lr", "weight_decay", "head_lr_mult"}, example="adamw")
    head_lr_mult = cfg.pop("head_lr_mult", 1.0)  # a config of a fork's own may leave it out: 1.0
    kwargs = target_kwargs("optimizer", cfg, locate("optimizer", cfg, WHAT), supplied={}, read_here=("head_lr_mult",))
    kwargs["lr"] = checked_number(
        "optimizer.lr", cfg.get("lr"), lambda x: 0 < x < math.inf, "a positive number (the peak learning rate)"
    )
    if "weight_decay" in cfg:
        kwargs["weight_decay"] = checked_number(
            "optimizer.weight_decay", cfg["weight_decay"], lambda x: 0 <= x < math.inf, "a number >= 0"
        )
    kwargs["head_lr_mult"] = checked_number(
        "optimizer.head_lr_mult",
        head_lr_mult,
        lambda x: 0 < x < math.inf,
        f"a positive number (the head's lr = head_lr_mult * {full_key('optimizer.lr')}; 1.0 = the same lr)",
    )
    return cfg, kwargs


def build_optimizer(model: torch.nn.Module, opt: Mapping, llrd: float = 1.0) -> torch.optim.Optimizer:
    """The optimizer `opt` describes over `model`'s parameter groups (see `param_groups`)."""
    cfg, kwargs = optimizer_arguments(opt)
    head_lr_mult = kwargs.pop("head_lr_mult")
    groups = param_groups(model, kwargs["lr"], kwargs.get("weight_decay", 0.0), llrd, head_lr_mult)
    return call("optimizer", cfg, kwargs, groups)


def check_optimizer(opt: Mapping) -> torch.optim.Optimizer:
    """Every check of `build_optimizer` (and the class's own), before the model has loaded: the
    optimizer built over a stand-in model with one weight and one bias, which it returns."""
    optimizer_arguments(opt)  # head_lr_mult's rule too; the stand-in has no head to give it to
    return build_optimizer(torch.nn.Linear(1, 1), {**plain(opt), "head_lr_mult": 1.0})
